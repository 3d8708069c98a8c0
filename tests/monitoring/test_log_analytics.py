"""The Log Analytics export read through Arrow equals reading it record by record with json.

Traffic is SIMULATED (real rows resampled), wrapped in ContainerLogV2 records the way the
data export writes them, with other container output and broken records mixed in.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from attrition_mlops.data import inference_log
from attrition_mlops.monitoring import log_analytics, log_reader
from attrition_mlops.simulate import simulate_traffic, simulated_log_lines

DAY = date(2026, 11, 20)
KEY = inference_log.Pseudonymiser(b"log-analytics-tests-0123456789")


def _record(message) -> str:
    return json.dumps(
        {
            "TimeGenerated": "2026-11-20T01:00:00Z",
            "ContainerName": "api",
            "PodName": "attrition-api-7d9f",
            "LogMessage": message,
        }
    )


@pytest.fixture(scope="module")
def export(tmp_path_factory, snapshot):
    frame = simulate_traffic(snapshot.frame, 400, scenario="overtime_surge", seed=5)
    lines = list(
        simulated_log_lines(
            frame, model_name="m", model_version="3", day=DAY, pseudonymise=KEY, per_request=2
        )
    )
    folder = tmp_path_factory.mktemp("la")
    clean = folder / "y=2026" / "m=11" / "d=20" / "h=00" / "PT1H.json"
    clean.parent.mkdir(parents=True)
    clean.write_text("".join(_record(line) + "\n" for line in lines[:100]))
    messy = folder / "y=2026" / "m=11" / "d=20" / "h=01" / "PT1H.json"
    messy.parent.mkdir(parents=True)
    out = []
    for i, line in enumerate(lines[100:]):
        out.append(_record(line if i % 3 else json.loads(line)))  # string or parsed object
        if i % 17 == 0:
            out.append(_record('INFO:     10.0.0.7:5123 - "POST /predict HTTP/1.1" 200'))
        if i % 29 == 0:
            out.append(json.dumps({"TimeGenerated": "2026-11-20T01:00:00Z"}))  # no LogMessage
    out[10] = "garbage that is not JSON"
    out[20] = ""
    out[30] = _record(lines[130].replace('"Age":', '"Age":-', 1))  # invalid: rejected later
    out[40] = _record(lines[140] + "\n")  # a raw newline inside the message
    out[50] = '{"LogMessage": "\\u00e9\\ud800"}'  # a lone surrogate
    messy.write_bytes(
        "\n".join(out).encode() + b"\n" + _record(lines[-1]).encode()[:-3] + b'\xff"}\n'
    )
    return folder


def _record_by_record(folder, rejected):
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield from log_analytics._record_by_record(str(path), path.read_bytes(), 1, rejected)


@pytest.mark.parametrize("chunk_bytes", [log_reader.CHUNK_BYTES, 4000])
def test_arrow_reading_equals_record_by_record(export, chunk_bytes):
    expected_rejected: list[str] = []
    expected = log_reader.read_frame(
        _record_by_record(export, expected_rejected), expected_rejected
    )
    rejected: list[str] = []
    frame = log_reader.read_frame(log_analytics.batches(export, rejected, chunk_bytes), rejected)
    pd.testing.assert_frame_equal(frame, expected)
    assert rejected == expected_rejected
    assert len(frame) > 350 and set(frame["model_version"]) == {"3"}
    assert any("not a JSON record" in r for r in rejected)
    assert any("('inputs', 0, 'Age')" in r for r in rejected)


def test_a_clean_export_takes_the_arrow_path_and_a_messy_one_falls_back(export):
    clean = export / "y=2026" / "m=11" / "d=20" / "h=00"
    produced = list(log_analytics.batches(clean, []))
    assert len(produced) == 1 and produced[0].lines is None  # one joined Arrow batch
    assert produced[0].numbers == list(range(1, 101))
    messy = list(log_analytics.batches(export / "y=2026" / "m=11" / "d=20" / "h=01", []))
    assert all(batch.lines is not None for batch in messy)  # read record by record
