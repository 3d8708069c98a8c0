"""docs/batch-scoring.md documents the columns the batch job writes: compared with a real run,
so the page cannot go stale again (it once listed an ``outlier_score`` the partition lacks)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from support import REPO

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.model.predictor import OUTPUT_COLUMNS as PYFUNC_COLUMNS
from attrition_mlops.scoring.batch import score_snapshot

PAGE = REPO / "docs" / "batch-scoring.md"
#: How the page names Arrow types.
TYPES = {"int64": "int64", "double": "double", "large_string": "string", "bool": "bool"}


def documented(heading: str) -> list[tuple[list[str], str]]:
    """(names in the first cell, the second cell) per row of the table under ``heading``."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"\n{heading}")
    rows = []
    for line in text[start:].splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        if not line.startswith("|") or line.startswith("|---") or line.startswith("| column"):
            continue
        if line.startswith("| key"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append((re.findall(r"`([^`]+)`", cells[0]) or [cells[0]], cells[1]))
    assert rows, f"no table under {heading!r}"
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory, predictor):
    """A real run over the bundled data with one invalid value and one ragged row."""
    folder = tmp_path_factory.mktemp("docs-run")
    raw = pd.read_csv(bundled_dataset_path(), dtype=str)
    raw.loc[5, "JobRole"] = "Astronaut"
    lines = raw.to_csv(index=False).encode().splitlines(keepends=True)
    lines[20] = lines[20].rsplit(b",", 1)[0] + b"\n"
    source = folder / "in.csv"
    source.write_bytes(b"".join(lines))
    return score_snapshot(
        source,
        folder / "out",
        date(2026, 11, 20),
        predictor,
        model_name="employee_attrition",
        model_version="3",
        progress=False,
    )


def test_the_prediction_columns_and_types_are_the_documented_ones(run):
    schema = pq.read_schema(sorted(Path(run.partition).glob("part-*.parquet"))[0])
    written = [(name, TYPES[str(schema.field(name).type)]) for name in schema.names]
    assert written == [
        (names[0], kind) for names, kind in documented("### Columns of the predictions")
    ]
    assert "outlier_score" not in schema.names


def test_the_manifest_keys_are_the_documented_ones(run):
    manifest = json.loads((Path(run.partition) / "_SUCCESS.json").read_text())
    keys = [name for names, _ in documented("### Keys of the manifest") for name in names]
    assert keys == list(manifest)


def test_the_rejects_columns_are_the_documented_ones(run):
    rejects = pq.read_schema(run.rejects)
    rows = documented("### Columns of the rejects")
    assert [names[0] for names, _ in rows] == [
        "source_file",
        "source_row",
        "*the input's columns*",
        "reason",
    ]
    header = list(pd.read_csv(bundled_dataset_path(), nrows=0).columns)
    inputs = [name for name in header if name != contract.LABEL]
    assert rejects.names == ["source_file", "source_row", *inputs, "reason"]
    kinds = {names[0]: kind for names, kind in rows}
    for name in rejects.names:
        expected = kinds.get(name, kinds["*the input's columns*"])
        assert TYPES[str(rejects.field(name).type)] == expected, name


def test_the_spark_udf_result_type_on_the_page_is_the_pyfunc_output():
    text = PAGE.read_text(encoding="utf-8")
    (result_type,) = re.findall(r'result_type="([^"]+)"', text)
    assert [field.split()[0] for field in result_type.split(",")] == list(PYFUNC_COLUMNS)
