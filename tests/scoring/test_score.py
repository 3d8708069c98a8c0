"""Batch scoring: complete, idempotent, atomic, resumable, and honest about bad rows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.data.validation import DataValidationError
from attrition_mlops.scoring.batch import TooManyRejectsError, score_snapshot

DAY = date(2026, 11, 20)


@pytest.fixture
def raw():
    return pd.read_csv(bundled_dataset_path(), dtype=str)


def _score(input_path, out, predictor, **kwargs):
    return score_snapshot(
        input_path,
        out,
        DAY,
        predictor,
        model_name="employee_attrition",
        model_version="7",
        progress=False,
        **kwargs,
    )


def _published(out):
    return (
        pads.dataset(out / f"run_date={DAY.isoformat()}", format="parquet").to_table().to_pandas()
    )


def test_scores_every_row_with_model_metadata(tmp_path, predictor, snapshot):
    result = _score(bundled_dataset_path(), tmp_path / "out", predictor, batch_rows=500)
    table = _published(tmp_path / "out")
    assert result.rows_in == result.rows_scored == len(table) == 1470
    assert table[contract.ID_COLUMN].is_unique
    assert set(table.columns) >= {
        "probability",
        "label",
        "is_outlier",
        "model_version",
        "scored_at",
    }
    assert (table.model_version == "7").all() and table.probability.between(0, 1).all()
    expected = predictor.predict_proba(snapshot.frame[list(contract.INPUT_COLUMNS)])
    by_id = table.set_index(contract.ID_COLUMN).loc[snapshot.frame[contract.ID_COLUMN]]
    assert np.abs(by_id.probability.to_numpy() - expected).max() <= 1e-12  # measured: 0.0
    manifest = json.loads((tmp_path / "out" / "run_date=2026-11-20" / "_SUCCESS.json").read_text())
    assert manifest["rows_scored"] == 1470 and manifest["model_version"] == "7"
    assert manifest["scoring_path"] == result.scoring_path == "compiled"
    # Consumers read the label rule from the manifest: label = Yes when probability >= threshold.
    assert (manifest["threshold"], manifest["positive_label"]) == (predictor.threshold, "Yes")
    labels = np.where(table.probability >= manifest["threshold"], "Yes", "No")
    assert (table.label.to_numpy() == labels).all()
    # Nothing in flight: no empty _staging/ (or lock file) is left behind.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run_date=2026-11-20"]


def test_the_partition_lock_survives_its_folder_removed_after_mkdir(tmp_path, monkeypatch):
    from attrition_mlops.scoring.partition_lock import partition_lock

    lock = tmp_path / "_staging" / "run_date=2026-11-20.lock"
    real_mkdir = type(lock).mkdir
    removed = []

    def mkdir_then_lose_it(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if not removed:  # another run's cleanup removes the empty folder right after our mkdir
            removed.append(self)
            self.rmdir()

    monkeypatch.setattr(type(lock), "mkdir", mkdir_then_lose_it)
    with partition_lock(lock, "run_date=2026-11-20", "run-1") as holder:
        assert holder["run_id"] == "run-1" and lock.exists()
    assert removed and not lock.exists()


def test_typed_parquet_scores_like_the_pipeline_and_rejects_bad_values(tmp_path, predictor, raw):
    typed = raw.astype({f.name: "Int64" for f in contract.FEATURES if f.is_integer})
    typed.loc[10, "Age"] = 150
    typed.loc[20, "MonthlyIncome"] = pd.NA
    typed.loc[30, "JobRole"] = "Astronaut"
    typed.to_parquet(tmp_path / "typed.parquet")  # integer columns stored as int64
    result = _score(tmp_path / "typed.parquet", tmp_path / "out", predictor, batch_rows=512)
    assert (result.rows_scored, result.rows_rejected) == (1467, 3)
    rejects = pd.read_parquet(result.rejects).set_index(contract.ID_COLUMN)
    reasons = rejects.reason.to_dict()
    ids = typed[contract.ID_COLUMN].astype(str)
    assert reasons == {
        ids[10]: "Age: outside [18, 100]",
        ids[20]: "MonthlyIncome: blank or missing",
        ids[30]: "JobRole: unknown category",
    }
    table = _published(tmp_path / "out").set_index(contract.ID_COLUMN)
    valid = typed.drop(index=[10, 20, 30]).drop(columns=[contract.LABEL])
    valid = valid.astype({f.name: "int64" for f in contract.FEATURES if f.is_integer})
    expected = predictor.predict(valid[list(contract.INPUT_COLUMNS)])
    scored = table.loc[valid[contract.ID_COLUMN]]
    assert np.abs(scored.probability.to_numpy() - expected.probability.to_numpy()).max() <= 1e-12
    assert (scored.label.to_numpy() == expected.label.to_numpy()).all()
    assert (scored.is_outlier.to_numpy() == expected.is_outlier.to_numpy()).all()


def test_rerun_for_the_same_date_leaves_one_copy(tmp_path, predictor):
    for _ in range(3):
        _score(bundled_dataset_path(), tmp_path / "out", predictor, batch_rows=400)
    table = _published(tmp_path / "out")
    assert len(table) == 1470 and table[contract.ID_COLUMN].is_unique
    leftovers = [p.name for p in (tmp_path / "out").iterdir()]
    assert sorted(leftovers) == ["run_date=2026-11-20"]  # no empty _staging/ left behind


def test_partitioned_parquet_folder_input(tmp_path, predictor, raw):
    for i, part in enumerate((raw.iloc[:700], raw.iloc[700:])):
        folder = tmp_path / "in" / f"day=2026-11-{i + 1:02d}"
        folder.mkdir(parents=True)
        part.to_parquet(folder / "data.parquet")
    (tmp_path / "in" / "_SUCCESS").write_text("")  # markers are not data
    assert _score(tmp_path / "in", tmp_path / "out", predictor).rows_scored == 1470


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_parts_hold_batch_rows_whatever_the_file_layout(tmp_path, predictor, raw, fmt):
    source = tmp_path / f"in.{fmt}"
    if fmt == "csv":  # one CSV read block, split into batches
        raw.to_csv(source, index=False)
    else:  # row groups of 300 rows: batches cross row groups
        pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), source, row_group_size=300)
    _score(source, tmp_path / "out", predictor, batch_rows=500)
    parts = sorted((tmp_path / "out" / "run_date=2026-11-20").glob("part-*.parquet"))
    assert [pq.read_metadata(p).num_rows for p in parts] == [500, 500, 470]


def test_unreadable_parquet_is_a_data_error(tmp_path, predictor):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataValidationError, match="broken.parquet: not a readable Parquet file"):
        _score(tmp_path / "broken.parquet", tmp_path / "out", predictor)


def test_invalid_rows_go_to_rejects_with_reasons(tmp_path, predictor, raw):
    raw.loc[[3, 800], "JobRole"] = "Astronaut"
    raw.loc[1200, "Age"] = "forty"
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    result = _score(bad, tmp_path / "out", predictor, batch_rows=300)
    assert (result.rows_scored, result.rows_rejected) == (1467, 3)
    rejects = pd.read_parquet(result.rejects)
    assert sorted(rejects[contract.ID_COLUMN]) == sorted(
        raw.loc[[3, 800, 1200], contract.ID_COLUMN]
    )
    assert rejects.reason.str.contains("JobRole: unknown category").sum() == 2
    assert rejects.reason.str.contains("Age: not a whole number").sum() == 1


def test_too_many_rejects_fail_without_publishing(tmp_path, predictor, raw):
    raw.loc[:30, "OverTime"] = "Sometimes"
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    with pytest.raises(TooManyRejectsError, match="31 of 1470 rows invalid"):
        _score(bad, tmp_path / "out", predictor)
    assert not (tmp_path / "out" / "run_date=2026-11-20").exists()
    assert len(pd.read_parquet(tmp_path / "out" / "_rejects" / "run_date=2026-11-20")) == 31


def test_resume_after_a_crash_reuses_parts(tmp_path, predictor, monkeypatch):
    from attrition_mlops.scoring import batch

    calls = {"n": 0}
    original = batch._score_batch

    def crash_on_fourth(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker lost")
        return original(*args)

    monkeypatch.setattr(batch, "_score_batch", crash_on_fourth)
    with pytest.raises(RuntimeError, match="worker lost"):
        _score(bundled_dataset_path(), tmp_path / "out", predictor, batch_rows=200)
    monkeypatch.setattr(batch, "_score_batch", original)
    result = _score(bundled_dataset_path(), tmp_path / "out", predictor, batch_rows=200)
    assert result.resumed_parts == 3
    table = _published(tmp_path / "out")
    assert len(table) == 1470 and table[contract.ID_COLUMN].is_unique


def test_rejects_of_resumed_parts_are_kept(tmp_path, predictor, raw, monkeypatch):
    from attrition_mlops.scoring import batch

    raw.loc[[3, 800, 1200], "JobRole"] = "Astronaut"  # batches 0, 4 and 6 of 200 rows
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    original = batch._score_batch

    def crash_on_batch_six(batch, *args):
        if crash_on_batch_six.calls == 6:
            raise RuntimeError("worker lost")
        crash_on_batch_six.calls += 1
        return original(batch, *args)

    crash_on_batch_six.calls = 0
    monkeypatch.setattr(batch, "_score_batch", crash_on_batch_six)
    with pytest.raises(RuntimeError, match="worker lost"):
        _score(bad, tmp_path / "out", predictor, batch_rows=200)
    monkeypatch.setattr(batch, "_score_batch", original)
    result = _score(bad, tmp_path / "out", predictor, batch_rows=200)
    assert result.resumed_parts == 6 and result.rows_rejected == 3
    rejects = pd.read_parquet(result.rejects)
    assert sorted(rejects[contract.ID_COLUMN]) == sorted(raw.loc[[3, 800, 1200], "EmployeeNumber"])
    # staged rejects gone with the published partition, and the empty _staging/ with them
    assert not (tmp_path / "out" / "_staging").exists()


@pytest.mark.integration  # starts a subprocess
def test_resume_after_sigkill_has_no_duplicate_or_missing_rows(tmp_path, predictor, raw):
    big = pd.concat(
        [raw.assign(EmployeeNumber=raw.EmployeeNumber.astype(int) + 10_000 * k) for k in range(8)]
    )  # fmt: skip  (11,760 rows, distinct ids)
    source = tmp_path / "big.csv"
    big.to_csv(source, index=False)
    joblib.dump(predictor, tmp_path / "predictor.joblib")
    script = f"""
import joblib, time
from datetime import date
from pathlib import Path
from attrition_mlops.scoring import batch
original = batch._score_batch
def slow(*a):
    time.sleep(0.3)
    return original(*a)
batch._score_batch = slow
batch.score_snapshot(Path({str(source)!r}), Path({str(tmp_path / "out")!r}), date(2026, 11, 20),
    joblib.load({str(tmp_path / "predictor.joblib")!r}), model_name="employee_attrition",
    model_version="7", batch_rows=250, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    staging = tmp_path / "out" / "_staging" / "run_date=2026-11-20"
    deadline = time.monotonic() + 120
    while len(list(staging.glob("part-*.parquet"))) < 5 and time.monotonic() < deadline:
        assert proc.poll() is None, "scoring finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(list(staging.glob("part-*.parquet")))
    assert 5 <= written < 48
    result = _score(source, tmp_path / "out", predictor, batch_rows=250)
    assert result.resumed_parts >= written - 1  # the kill may land between write and rename
    table = _published(tmp_path / "out")
    assert len(table) == len(big) and table[contract.ID_COLUMN].is_unique
    assert set(table[contract.ID_COLUMN]) == set(big.EmployeeNumber.astype(int))
    assert table.scored_at.nunique() == 1  # resumed parts and new parts share one timestamp


def test_an_unterminated_quote_in_a_multi_block_csv_names_its_line(tmp_path, predictor, raw):
    big = pd.concat([raw] * 8, ignore_index=True)  # ~1.9 MB: more than one 1 MB parser block
    lines = big.to_csv(index=False).encode().splitlines(keepends=True)
    lines[3000] = lines[3000].replace(b",No,", b',"No,', 1)
    source = tmp_path / "quote.csv"
    source.write_bytes(b"".join(lines))
    with pytest.raises(DataValidationError, match=r"quote.csv line 3001: unterminated quote"):
        _score(source, tmp_path / "out", predictor)
    assert not (tmp_path / "out" / "run_date=2026-11-20").exists()


def test_rejects_name_their_source_file_and_row_for_csv_and_parquet(tmp_path, predictor, raw):
    """Each reject says where it came from: the input file, and the row as the file numbers it
    (CSV: its line, the header being line 1; Parquet: its position, the first row being 1).
    Rows spread over several batches and two files of a folder input, with ragged CSV rows."""
    folder = tmp_path / "in"
    folder.mkdir()
    first, second = raw.iloc[:700].copy(), raw.iloc[700:].copy()
    first.loc[[3, 450], "JobRole"] = "Astronaut"
    second.loc[[1200], "Age"] = "forty"
    first.to_csv(folder / "a.csv", index=False)
    lines = second.to_csv(index=False).encode().splitlines(keepends=True)
    lines[10] = lines[10].rsplit(b",", 1)[0] + b"\n"  # line 11 of b.csv: one field short
    (folder / "b.csv").write_bytes(b"".join(lines))
    result = _score(folder, tmp_path / "out", predictor, batch_rows=200)
    rejects = pd.read_parquet(result.rejects)
    located = sorted(zip(rejects.source_file, rejects.source_row, strict=True))
    # a.csv: data rows 3 and 450 are lines 5 and 452; b.csv: frame row 1200 is its data row
    # 500 (line 502), but the ragged line 11 before it is skipped by the parser, not lost.
    assert located == [
        (str(folder / "a.csv"), 5),
        (str(folder / "a.csv"), 452),
        (str(folder / "b.csv"), 11),
        (str(folder / "b.csv"), 502),
    ]
    by_row = rejects.set_index("source_row")
    assert by_row.loc[502, contract.ID_COLUMN] == raw.loc[1200, contract.ID_COLUMN]
    assert by_row.loc[452, contract.ID_COLUMN] == raw.loc[450, contract.ID_COLUMN]
    assert rejects.source_row.dtype == "int64"

    typed = raw.astype({f.name: "Int64" for f in contract.FEATURES if f.is_integer})
    typed.loc[[10, 1000], "Age"] = 150
    typed.to_parquet(tmp_path / "in.parquet", index=False)
    result = _score(tmp_path / "in.parquet", tmp_path / "out2", predictor, batch_rows=300)
    rejects = pd.read_parquet(result.rejects)
    assert sorted(zip(rejects.source_file, rejects.source_row, strict=True)) == [
        (str(tmp_path / "in.parquet"), 11),
        (str(tmp_path / "in.parquet"), 1001),
    ]


def test_csv_source_rows_follow_the_parsers_numbering_around_skipped_lines(tmp_path):
    from attrition_mlops.scoring.source import open_input

    # Records: header 1, "1,2" 2, ragged "3,4,5" 3, "6,7" 4, ragged "8" 5, "9,10" 6. Blank
    # lines are skipped by the parser and not numbered (docs/batch-scoring.md says so).
    (tmp_path / "x.csv").write_bytes(b"a,b\n1,2\n\n3,4,5\n6,7\n\n\n8\n9,10\n")
    malformed = []
    [(batch, origin)] = list(open_input(tmp_path / "x.csv").located_batches(10, malformed))
    assert batch.column("a").to_pylist() == ["1", "6", "9"]
    assert [m.line for m in malformed] == [3, 5]
    assert origin.rows(np.arange(3)).tolist() == [2, 4, 6]
    [(_, second)] = list(open_input(tmp_path / "x.csv").located_batches(10))
    assert second.rows(np.array([2])).tolist() == [6]
