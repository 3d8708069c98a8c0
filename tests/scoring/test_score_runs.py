"""Batch scoring through ``jobs/score.py``: one writer per partition, malformed CSV handled.

A real registered model in a real (SQLite) MLflow store; the job runs as a process (``python
jobs/score.py``) or through ``main(argv)``, exactly as the DAG and an operator run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.dataset as pads
import pytest
from support import REPO, clear_settings_caches

from attrition_mlops import registry
from attrition_mlops import settings as settings_module
from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.model.predictor import AttritionPyfunc, write_artifacts
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.scoring.manifest import check_partition

JOB = REPO / "jobs" / "score.py"
DAY = "2026-11-20"
PARTITION = f"run_date={DAY}"

# Runs jobs/score.py with scoring held at its first batch until the test releases it: the
# first run is "slow" for exactly as long as the test needs, whatever the machine's speed.
HELD_RUN = """
import runpy, sys, time
from pathlib import Path
from attrition_mlops.scoring import batch

gate, original = Path(sys.argv[1]), batch._score_batch

def held(*args):
    (gate / "holding").touch()
    deadline = time.monotonic() + 300
    while not (gate / "release").exists():
        if time.monotonic() > deadline:
            raise SystemExit("never released")
        time.sleep(0.02)
    return original(*args)

batch._score_batch = held
raise SystemExit(runpy.run_path(sys.argv[2])["main"](sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory, snapshot, predictor):
    """A registered version of a small real model: (environment for the job, model URI)."""
    state = tmp_path_factory.mktemp("state")
    env = {"ATTRITION_STATE_DIR": str(state), "ATTRITION_SCORE_BATCH_ROWS": "500"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("ATTRITION_TRACKING_URI", raising=False)
        clear_settings_caches()
        configure_mlflow(settings_module.get_settings())
        X = snapshot.frame[list(contract.INPUT_COLUMNS)]
        profile = build_reference_profile(X, source_sha256=snapshot.sha256)
        with tempfile.TemporaryDirectory() as tmp, mlflow.start_run():
            artifacts = write_artifacts(Path(tmp), predictor, profile)
            uri = mlflow.pyfunc.log_model(
                name="model",
                python_model=AttritionPyfunc(),
                artifacts=artifacts,
                pip_requirements=[],
            ).model_uri
        version, _ = registry.register_version(uri, "employee_attrition", run_key="t", tags={})
    clear_settings_caches()
    yield env, f"models:/employee_attrition/{version.version}"
    clear_settings_caches()


@pytest.fixture
def job(model, monkeypatch):
    """``main(argv)`` of jobs/score.py in this process, against the module's MLflow store."""
    import runpy

    env, uri = model
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ATTRITION_TRACKING_URI", raising=False)
    clear_settings_caches()
    main = runpy.run_path(str(JOB))["main"]
    yield lambda *args: main([*args, "--model-uri", uri, "--run-date", DAY, "--no-progress"])
    clear_settings_caches()


@pytest.fixture
def raw():
    return pd.read_csv(bundled_dataset_path(), dtype=str)


def _args(model, source: Path, out: Path, run_id: str) -> list[str]:
    return [
        "--input",
        str(source),
        "--output",
        str(out),
        "--run-date",
        DAY,
        "--model-uri",
        model[1],
        "--no-progress",
        "--run-id",
        run_id,
    ]


def _published(out: Path) -> pd.DataFrame:
    return pads.dataset(out / PARTITION, format="parquet").to_table().to_pandas()


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the held run never reached its first batch"
        time.sleep(0.05)


def _two_inputs(tmp_path: Path, raw: pd.DataFrame) -> tuple[Path, Path]:
    scheduled, manual = tmp_path / "scheduled.csv", tmp_path / "manual.csv"
    raw.to_csv(scheduled, index=False)
    shifted = raw.EmployeeNumber.astype(int) + 100_000  # distinct ids: rows tell their input
    raw.assign(EmployeeNumber=shifted.astype(str)).to_csv(manual, index=False)
    return scheduled, manual


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration  # starts a subprocess
def test_a_second_run_for_the_same_partition_fails_fast_and_the_first_publishes_alone(
    tmp_path, model, job, raw, capsys
):
    scheduled, manual = _two_inputs(tmp_path, raw)
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HELD_RUN,
            str(gate),
            str(JOB),
            *_args(model, scheduled, out, "scheduled__2026-11-20"),
        ],
        env={**os.environ, **model[0]},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(gate / "holding", first)  # the first run holds the partition, mid-scoring
        capsys.readouterr()
        # The manual rerun: the same job code in this process, on another input.
        assert job("--input", str(manual), "--output", str(out), "--run-id", "manual-rerun") == 2
        message = capsys.readouterr().err.strip().splitlines()[-1]
        assert message.startswith("PartitionBusyError: partition ")
        assert str(out / PARTITION) in message
        assert f"pid {first.pid}" in message and "run_id scheduled__2026-11-20" in message
        assert "host " in message and "started_at 20" in message
        assert not (out / PARTITION).exists()  # the refused run published nothing
    finally:
        (gate / "release").touch()
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    table = _published(out)
    assert sorted(table[contract.ID_COLUMN]) == sorted(raw.EmployeeNumber.astype(int))
    manifest = json.loads((out / PARTITION / "_SUCCESS.json").read_text())
    assert manifest["input_sha256"] == _sha256(scheduled) != _sha256(manual)
    assert manifest["rows_scored"] == len(table) == 1470
    assert manifest["run_id"] == "scheduled__2026-11-20"
    assert check_partition(out / PARTITION) == []
    assert json.loads(stdout.strip().splitlines()[-1]) == manifest
    assert not (out / "_staging").exists()  # lock file, staging and the empty folder gone


@pytest.mark.integration  # starts a subprocess
def test_a_killed_holder_leaves_no_stale_lock(tmp_path, model, job, raw):
    scheduled, manual = _two_inputs(tmp_path, raw)
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HELD_RUN,
            str(gate),
            str(JOB),
            *_args(model, scheduled, out, "killed"),
        ],
        env={**os.environ, **model[0]},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(gate / "holding", first)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert (out / "_staging" / f"{PARTITION}.lock").exists()  # left behind, but not held
    assert job("--input", str(manual), "--output", str(out), "--run-id", "after-kill") == 0
    table = _published(out)
    assert set(table[contract.ID_COLUMN]) == set(raw.EmployeeNumber.astype(int) + 100_000)
    manifest = json.loads((out / PARTITION / "_SUCCESS.json").read_text())
    assert manifest["input_sha256"] == _sha256(manual) and check_partition(out / PARTITION) == []


def test_check_partition_names_a_part_from_another_input(tmp_path, job, raw):
    scheduled, manual = _two_inputs(tmp_path, raw)
    assert job("--input", str(scheduled), "--output", str(tmp_path / "a")) == 0
    assert job("--input", str(manual), "--output", str(tmp_path / "b")) == 0
    stray = tmp_path / "b" / PARTITION / "part-00000.parquet"
    stray.rename(tmp_path / "a" / PARTITION / "part-00099.parquet")
    problems = check_partition(tmp_path / "a" / PARTITION)
    assert problems == [
        f"part-00099.parquet was scored from input {_sha256(manual)}, not {_sha256(scheduled)}",
        "the parts hold 1970 rows, the manifest says 1470",
    ]


# -- malformed CSV ------------------------------------------------------------------------------


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def _csv_lines(raw: pd.DataFrame) -> list[bytes]:
    return raw.to_csv(index=False).encode().splitlines(keepends=True)


def test_ragged_rows_are_rejected_with_their_line_and_the_rest_published(
    tmp_path, job, raw, capsys
):
    raw.loc[100, "JobRole"] = "Astronaut"  # an invalid value in the same batch as a ragged row
    lines = _csv_lines(raw)
    lines[100] = lines[100].rsplit(b",", 1)[0] + b"\n"  # data row 99: one field short
    lines[900] = lines[900].rstrip(b"\n") + b",extra\n"  # data row 899: one field too many
    source = _write_lines(tmp_path / "ragged.csv", lines)
    out = tmp_path / "out"
    assert job("--input", str(source), "--output", str(out)) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["rows_in"], result["rows_scored"], result["rows_rejected"]) == (1470, 1467, 3)
    rejects = pd.read_parquet(result["rejects"])
    assert list(rejects.reason) == [
        "JobRole: unknown category",
        f"ragged.csv line 101: malformed CSV row, 34 fields where the header has 35 "
        f"(the line as read: {lines[100].decode().rstrip()!r})",
        f"ragged.csv line 901: malformed CSV row, 36 fields where the header has 35 "
        f"(the line as read: {lines[900].decode().rstrip()!r})",
    ]
    assert rejects[contract.ID_COLUMN].isna().tolist() == [False, True, True]
    assert rejects[contract.ID_COLUMN][0] == raw.EmployeeNumber[100]
    published = set(_published(out)[contract.ID_COLUMN])
    assert published == set(raw.EmployeeNumber.astype(int).drop(index=[99, 100, 899]))


def _fatal(job, tmp_path, source: Path, capsys) -> str:
    out = tmp_path / "out"
    assert job("--input", str(bundled_dataset_path()), "--output", str(out)) == 0
    before = (out / PARTITION / "_SUCCESS.json").read_text()
    capsys.readouterr()
    assert job("--input", str(source), "--output", str(out)) == 2
    # Nothing published: the partition of the earlier good run is untouched.
    assert (out / PARTITION / "_SUCCESS.json").read_text() == before
    assert len(_published(out)) == 1470
    return capsys.readouterr().err


def test_an_unterminated_quote_exits_2_naming_file_and_line(tmp_path, job, raw, capsys):
    lines = _csv_lines(raw)
    lines[500] = lines[500].replace(b",Sales,", b',"Sales,', 1)
    assert b'"' in lines[500]
    source = _write_lines(tmp_path / "quote.csv", lines)
    err = _fatal(job, tmp_path, source, capsys)
    assert f"{source} line 501: unterminated quote" in err
    assert "nothing was published" in err and "Traceback" not in err


def test_bytes_that_are_not_utf8_exit_2_naming_file_and_line(tmp_path, job, raw, capsys):
    lines = _csv_lines(raw)
    lines[700] = lines[700].replace(b",Male,", b",M\xe4le,", 1)
    assert b"\xe4" in lines[700]
    source = _write_lines(tmp_path / "latin1.csv", lines)
    err = _fatal(job, tmp_path, source, capsys)
    assert f"{source} line 701: not valid UTF-8 (byte 0xe4" in err
    assert "save the file as UTF-8" in err and "Traceback" not in err


def test_a_non_utf8_header_exits_2_naming_line_1(tmp_path, job, raw, capsys):
    lines = _csv_lines(raw)
    lines[0] = lines[0].replace(b"Age", b"\xc4ge", 1)
    source = _write_lines(tmp_path / "header.csv", lines)
    err = _fatal(job, tmp_path, source, capsys)
    assert f"{source} line 1: not valid UTF-8 (byte 0xc4 at byte 1 of the line)" in err
