"""The inference-log schema (shared with the drift job) and its background writer."""

from __future__ import annotations

import io
import json
import logging
import os
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from pydantic import ValidationError
from serving_support import TEST_PSEUDONYM_KEY, NothingDeployed, pipeline_settings, serving_settings

from attrition_mlops.data import contract
from attrition_mlops.data.example import EXAMPLE_RECORD
from attrition_mlops.data.inference_log import (
    EXTRA_COLUMNS,
    SCHEMA_VERSION,
    Pseudonymiser,
    build_record,
    dump_line,
    export_files,
    parse_line,
    read_records,
    records_to_frame,
)
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.log_writer import InferenceLogWriter, PendingEntry
from attrition_mlops.serving.schemas import EmployeeRecord
from attrition_mlops.settings import PipelineSettings

KEY = Pseudonymiser(TEST_PSEUDONYM_KEY.encode())
NOW = datetime(2026, 3, 1, 23, 59, 59, 500_000, tzinfo=UTC)
RECORD = EmployeeRecord.model_validate(EXAMPLE_RECORD).__dict__  # normalised: Over18 "Y"
OUTPUT = {"probability": 0.25, "label": "No", "is_outlier": False}


def _entry(request_id="r1", timestamp=NOW, n=2, version="3") -> PendingEntry:
    return PendingEntry(
        timestamp, request_id, "employee_attrition", version, [RECORD] * n, [OUTPUT] * n, 1.5
    )


def _line(**changes) -> str:
    record = build_record(
        timestamp=NOW,
        request_id="r1",
        model_name="employee_attrition",
        model_version="3",
        inputs=[RECORD],
        outputs=[OUTPUT],
        latency_ms=1.23456,
        pseudonymise=KEY,
    )
    return dump_line(record | changes)


def test_round_trip():
    parsed = parse_line(_line())
    assert parsed.schema_version == SCHEMA_VERSION and parsed.event == "attrition.inference"
    assert parsed.timestamp == NOW.replace(microsecond=500_000)
    assert parsed.timestamp.utcoffset() == timedelta(0)
    assert parsed.model_version == "3" and parsed.n_records == 1 and parsed.latency_ms == 1.235
    employee = parsed.inputs[0]
    assert employee.EmployeeNumber == KEY(253) != "253" and employee.Over18 == "Y"
    assert json.loads(_line())["timestamp"] == "2026-03-01T23:59:59.500+00:00"


def test_the_raw_identifier_never_reaches_the_line():
    line = _line()
    assert '"EmployeeNumber":253' not in line and KEY(253) in line


@pytest.mark.parametrize(
    "changes",
    [
        {"schema_version": 2},
        {"extra": 1},
        {"n_records": 2},
        {"timestamp": "2026-03-01T23:59:59"},  # naive: not accepted
        {"inputs": [dict(EXAMPLE_RECORD)]},  # raw identifier, "Yes" alias
        {"inputs": [dict(EXAMPLE_RECORD, EmployeeNumber=KEY(1), Over18="Y", JobRole="Pilot")]},
        {"outputs": [{"probability": 1.5, "label": "No", "is_outlier": False}]},
        {"event": "something.else"},
    ],
)
def test_parse_line_rejects_what_is_not_ours(changes):
    with pytest.raises(ValidationError):
        parse_line(_line(**changes))


def test_parse_line_rejects_truncated_and_nan():
    with pytest.raises(ValidationError):
        parse_line(_line()[:-10])
    with pytest.raises(ValueError):
        dump_line({"probability": float("nan")})


def test_records_to_frame():
    records = [parse_line(_line()), parse_line(_line(request_id="r2"))]
    frame = records_to_frame(records)
    assert list(frame.columns) == [*contract.INPUT_COLUMNS, *EXTRA_COLUMNS]
    assert len(frame) == 2 and list(frame.request_id) == ["r1", "r2"]
    assert frame["Age"].dtype == "int64" and frame["Department"].iloc[0] == "Research & Development"
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert frame["EmployeeNumber"].iloc[0] == KEY(253)
    assert frame["probability"].dtype == "float64" and frame["is_outlier"].dtype == bool


def test_pseudonymiser():
    other = Pseudonymiser(b"another-key-of-enough-length")
    assert KEY(253) == KEY(253) != other(253) and len(KEY(253)) == 64
    assert "serving-tests" not in repr(KEY)
    with pytest.raises(ValueError):
        Pseudonymiser(b"short")


def test_writer_partitions_by_day_and_flushes_everything_on_close(tmp_path):
    stream = io.StringIO()
    writer = InferenceLogWriter(
        pseudonymise=KEY, export_dir=tmp_path, stream=stream, flush_seconds=60
    )
    writer.start()
    for i in range(25):
        writer.submit(_entry(f"a{i}"))
    for i in range(5):
        writer.submit(_entry(f"b{i}", timestamp=NOW + timedelta(seconds=1)))  # next UTC day
    writer.close()
    assert writer.written == 30 and writer.failed == 0 and writer.pending() == 0
    first = export_files(tmp_path, date(2026, 3, 1), date(2026, 3, 1))
    second = export_files(tmp_path, date(2026, 3, 2), date(2026, 3, 2))
    assert [p.parent.name for p in first + second] == ["date=2026-03-01", "date=2026-03-02"]
    assert first[0].name.startswith(f"{os.getpid()}-") and first[0].suffix == ".jsonl"
    assert [r.request_id for r in read_records(first)] == [f"a{i}" for i in range(25)]
    assert len(list(read_records(second))) == 5
    assert len(stream.getvalue().splitlines()) == 30


def test_read_records_can_skip_a_torn_line(tmp_path):
    path = tmp_path / "date=2026-03-01" / "1-x.jsonl"
    path.parent.mkdir()
    path.write_text(_line() + "\n" + _line()[:50] + "\n\n" + _line(request_id="r2") + "\n")
    with pytest.raises(ValidationError):
        list(read_records([path]))
    rejected: list[str] = []
    assert [r.request_id for r in read_records([path], rejected=rejected)] == ["r1", "r2"]
    assert len(rejected) == 1 and ":2:" in rejected[0]


def test_export_location_follows_the_target(tmp_path):
    local = PipelineSettings(state_dir=tmp_path, target="local")
    azure = PipelineSettings(state_dir=tmp_path, target="azure")
    settings = serving_settings(tmp_path, log_export=None, log_export_dir=None)
    assert settings.export_dir(local) == tmp_path / "inference-logs"
    assert settings.export_dir(azure) is None
    assert serving_settings(tmp_path, log_export=True).export_dir(azure) is not None


def test_pseudonym_key_required_outside_local_and_generated_locally(tmp_path, caplog):
    settings = serving_settings(tmp_path, pseudonym_key=None)
    azure = PipelineSettings(state_dir=tmp_path, target="azure")
    with pytest.raises(RuntimeError, match="PSEUDONYM_KEY"):
        create_app(settings, NothingDeployed(), pipeline=azure)
    with caplog.at_level(logging.WARNING):
        create_app(settings, NothingDeployed(), pipeline=pipeline_settings(tmp_path))
    assert "random key" in caplog.text


def test_an_unwritable_export_folder_fails_at_start(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    writer = InferenceLogWriter(
        pseudonymise=KEY, export_dir=blocker / "logs", stream=None, flush_seconds=1
    )
    with pytest.raises(RuntimeError, match="LOG_EXPORT=false"):
        writer.start()
