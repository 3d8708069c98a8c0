"""Reading snapshots from disk: the bundled file, broken files, and the validate_data job."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import REPO, load_script

from attrition_mlops.data import contract, dataset
from attrition_mlops.data.dataset import (
    BUNDLED_SHA256,
    bundled_dataset_path,
    file_sha256,
    load_snapshot,
    read_table,
)
from attrition_mlops.data.validation import DataValidationError

JOB = REPO / "jobs" / "validate_data.py"


def _file_problem(path: Path) -> str:
    with pytest.raises(DataValidationError) as caught:
        load_snapshot(path)
    problems = caught.value.problems
    assert len(problems) == 1 and problems[0].column is None
    assert str(path) in problems[0].message
    return problems[0].message


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return Path(shutil.copy(bundled_dataset_path(), tmp_path / "snapshot.csv"))


def test_bundled_file_matches_its_checksum() -> None:
    path = bundled_dataset_path()
    assert path.parent == Path(dataset.__file__).parent  # the CSV ships inside attrition_mlops.data
    assert BUNDLED_SHA256 == hashlib.sha256(path.read_bytes()).hexdigest()
    snapshot = load_snapshot()
    assert snapshot.sha256 == BUNDLED_SHA256 and snapshot.path == path
    assert snapshot.n_rows == 1470 and snapshot.label_counts == {"No": 1233, "Yes": 237}
    assert snapshot.frame.shape == (1470, 35)


def test_file_sha256_streams_in_chunks(tmp_path: Path) -> None:
    data = random.Random(0).randbytes(3 * (1 << 20) + 17)  # spans several 1 MiB chunks
    (tmp_path / "blob").write_bytes(data)
    assert file_sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_tampered_copy_is_still_valid_data_but_not_the_bundled_file(
    good_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = good_csv.read_text()
    good_csv.write_text(text.replace(",5993,", ",5994,", 1))  # row 1's MonthlyIncome
    snapshot = load_snapshot(good_csv)
    assert snapshot.n_rows == 1470 and snapshot.sha256 != BUNDLED_SHA256
    assert snapshot.frame.loc[0, "MonthlyIncome"] == 5994

    monkeypatch.setattr(dataset, "bundled_dataset_path", lambda: good_csv)
    with pytest.raises(DataValidationError) as caught:
        load_snapshot()
    message = str(caught.value)
    assert "shipped data set is corrupt" in message and BUNDLED_SHA256 in message
    assert str(good_csv) in message


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "file is empty" in _file_problem(tmp_path / "empty.csv")


def test_blank_lines_only(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_text("\n\n")
    assert "no header row" in _file_problem(tmp_path / "blank.csv")


def test_garbage_bytes(tmp_path: Path) -> None:
    (tmp_path / "garbage.csv").write_bytes(random.Random(1).randbytes(4096))
    assert "not CSV text" in _file_problem(tmp_path / "garbage.csv")


def test_wrong_encoding_names_the_line(good_csv: Path) -> None:
    lines = good_csv.read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b"Male", "Mâle".encode("latin-1"), 1)
    good_csv.write_bytes(b"\n".join(lines))
    assert "not UTF-8 text (byte 0xe2 on line 7" in _file_problem(good_csv)


def test_row_longer_than_header(good_csv: Path) -> None:
    good_csv.write_text(good_csv.read_text() + "1," * 36 + "\n")
    assert "Expected 35 fields in line 1472, saw 37" in _file_problem(good_csv)


def test_header_shorter_than_every_row(good_csv: Path) -> None:
    # pandas would silently use the surplus first field as the index, shifting every column.
    good_csv.write_text(good_csv.read_text().replace("Age,", "", 1))
    assert "more fields than the header" in _file_problem(good_csv)


def test_unterminated_quote(good_csv: Path) -> None:
    good_csv.write_text(good_csv.read_text() + '41,"Yes\n')
    assert "malformed CSV" in _file_problem(good_csv)


def test_truncated_csv_names_the_short_last_row(good_csv: Path) -> None:
    data = good_csv.read_bytes()
    good_csv.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 40])  # last row cut mid-way
    with pytest.raises(DataValidationError) as caught:
        load_snapshot(good_csv)
    message = str(caught.value)
    assert message.startswith(f"{len(caught.value.problems)} problems in {good_csv}:")
    assert "YearsWithCurrManager: 1 row blank or missing (row 1470)" in message
    assert all(problem.rows == (1470,) for problem in caught.value.problems)


def test_wrong_schema_csv(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("id,salary\n1,1000\n")
    with pytest.raises(DataValidationError) as caught:
        load_snapshot(path)
    message = str(caught.value)
    assert "missing all 35 required columns" in message
    assert "unexpected columns not in the feature contract: 'id', 'salary'" in message


def test_renamed_column(good_csv: Path) -> None:
    good_csv.write_text(good_csv.read_text().replace("Age,", "age,", 1))
    with pytest.raises(DataValidationError) as caught:
        load_snapshot(good_csv)
    assert [str(p) for p in caught.value.problems] == [
        "missing required columns: Age",
        "unexpected columns not in the feature contract: 'age'",
    ]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "file not found" in _file_problem(tmp_path / "absent.csv")
    assert "is a directory" in _file_problem(tmp_path)


def test_read_table_keeps_raw_text(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\nNA,\n")
    frame = read_table(tmp_path / "t.csv")
    assert frame.to_dict("list") == {"a": ["NA"], "b": [""]}


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path: Path, suffix: str) -> None:
    original = load_snapshot().frame
    path = tmp_path / f"snapshot{suffix}"
    original.to_parquet(path, index=False)
    snapshot = load_snapshot(path)
    pd.testing.assert_frame_equal(snapshot.frame, original)
    assert snapshot.label_counts == {"No": 1233, "Yes": 237}


def test_parquet_without_label_for_scoring(tmp_path: Path) -> None:
    path = tmp_path / "batch.parquet"
    load_snapshot().frame.drop(columns=[contract.LABEL]).to_parquet(path)
    snapshot = load_snapshot(path, require_label=False)
    assert tuple(snapshot.frame.columns) == contract.INPUT_COLUMNS
    assert snapshot.label_counts == {}


def test_corrupt_parquet(good_csv: Path) -> None:
    path = good_csv.rename(good_csv.with_suffix(".parquet"))
    assert "not a readable parquet file" in _file_problem(path)


def test_job_main_writes_summary(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = load_script(str(JOB.relative_to(REPO)), "validate_data_job")

    out = tmp_path / "out" / "summary.json"
    assert job.main(["--output-json", str(out)]) == 0  # the latest snapshot: the bundled one
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    partition = state_dir / "snapshots" / "as_of=2017-03-31"
    assert printed["rows"] == 1470 and printed["snapshot_as_of"] == "2017-03-31"
    assert printed["path"] == str(partition / "data.parquet")
    assert printed["sha256"] == file_sha256(partition / "data.parquet")

    (partition / "data.parquet").write_bytes(b"PAR1 not the stored rows PAR1")
    assert job.main(["--snapshot-as-of", "2017-03-31"]) == 2
    assert "does not match the manifest" in capsys.readouterr().err


def _run_job(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(JOB), *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_job_subprocess_fails_with_message_on_bad_data(good_csv: Path) -> None:
    frame = pd.read_csv(good_csv, dtype=str, keep_default_na=False)
    frame.loc[[4, 16], "Age"] = ["7", "150"]
    frame.to_csv(good_csv, index=False)
    result = _run_job("--data", str(good_csv))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"data validation failed:\n1 problem in {good_csv}:\n")
    assert "Age: 2 rows outside [18, 100] (rows 5, 17; values 7, 150)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_job_subprocess_succeeds_on_good_data(good_csv: Path) -> None:
    result = _run_job("--data", str(good_csv))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {
        "path": str(good_csv),
        "sha256": BUNDLED_SHA256,
        "rows": 1470,
        "label_counts": {"No": 1233, "Yes": 237},
    }
