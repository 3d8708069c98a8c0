"""The columnar log reader against the line-by-line pydantic reader: same frame, same rejections.

The corpus is SIMULATED traffic built from the real data, plus lines broken in every way we
could think of: each must be accepted or rejected exactly as ``inference_log.parse_line`` does,
and land in the same place of the frame.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from attrition_mlops.data import contract, inference_log
from attrition_mlops.monitoring import log_reader
from attrition_mlops.simulate import simulate_traffic, simulated_log_lines

DAY = date(2026, 11, 20)
KEY = inference_log.Pseudonymiser(b"log-reader-tests-0123456789")


@pytest.fixture(scope="module")
def lines(snapshot) -> list[str]:
    frame = simulate_traffic(snapshot.frame, 600, scenario="salary_inflation", seed=3)
    return list(
        simulated_log_lines(
            frame, model_name="m", model_version="1", day=DAY, pseudonymise=KEY, per_request=3
        )
    )


def _edit(line: str, change) -> str:
    record = json.loads(line)
    change(record)
    return json.dumps(record, separators=(",", ":"))


def _set(path: tuple, value):
    def change(record):
        target = record
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(path: tuple):
    def change(record):
        target = record
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


#: (label, how to break a valid line). Some are accepted by the model's coercions: the point
#: is that both readers decide alike, whatever they decide.
BREAKS = {
    "int as numeric string": _set(("inputs", 0, "Age"), "41"),
    "int as 41.0": _set(("inputs", 0, "Age"), 41.0),
    "int as 41.5": _set(("inputs", 0, "Age"), 41.5),
    "int as bool": _set(("inputs", 0, "Age"), True),
    "int below minimum": _set(("inputs", 1, "Age"), 7),
    "int above maximum": _set(("inputs", 2, "MonthlyIncome"), 10**9),
    "int overflowing int64": _set(("inputs", 0, "DailyRate"), 10**20),
    "int null": _set(("inputs", 0, "Age"), None),
    "unknown category": _set(("inputs", 0, "Department"), "Marketing"),
    "category alias (not normalised)": _set(("inputs", 0, "BusinessTravel"), "Travel Rarely"),
    "category as number": _set(("inputs", 0, "Gender"), 1),
    "bad pseudonym": _set(("inputs", 0, contract.ID_COLUMN), "1234"),
    "pseudonym upper case": lambda r: r["inputs"][0].update(
        {contract.ID_COLUMN: r["inputs"][0][contract.ID_COLUMN].upper()}
    ),
    "raw employee number": _set(("inputs", 0, contract.ID_COLUMN), 1234),
    "missing input field": _drop(("inputs", 1, "JobRole")),
    "extra input field": _set(("inputs", 0, "Salary"), 1),
    "extra top-level field": _set(("note",), "x"),
    "extra output field": _set(("outputs", 0, "score"), 0.5),
    "input null": _set(("inputs", 1), None),
    "inputs null": _set(("inputs",), None),
    "inputs an object": _set(("inputs",), {"Age": 41}),
    "n_records disagrees": _set(("n_records",), 2),
    "no records": lambda r: r.update(inputs=[], outputs=[], n_records=0),
    "outputs shorter": lambda r: r["outputs"].pop(),
    "missing event (has a default)": _drop(("event",)),
    "event null": _set(("event",), None),
    "other event": _set(("event",), "other"),
    "schema version 2": _set(("schema_version",), 2),
    "schema version '1'": _set(("schema_version",), "1"),
    "naive timestamp": _set(("timestamp",), "2026-11-20T10:00:00"),
    "Z timestamp": _set(("timestamp",), "2026-11-20T10:00:00Z"),
    "offset timestamp": _set(("timestamp",), "2026-11-20T23:30:00-02:00"),
    "space-separated timestamp": _set(("timestamp",), "2026-11-20 10:00:00+00:00"),
    "impossible date": _set(("timestamp",), "2026-02-30T10:00:00+00:00"),
    "timestamp on another day": _set(("timestamp",), "2026-04-12T10:00:00+00:00"),
    "timestamp at the next midnight": _set(("timestamp",), "2026-11-21T00:00:00+00:00"),
    "timestamp at this midnight": _set(("timestamp",), "2026-11-20T00:00:00+00:00"),
    "timestamp a microsecond early": _set(("timestamp",), "2026-11-19T23:59:59.999999+00:00"),
    "timestamp as number": _set(("timestamp",), 1795000000),
    "timestamp garbage": _set(("timestamp",), "yesterday"),
    "probability above 1": _set(("outputs", 0, "probability"), 1.5),
    "probability as int 1": _set(("outputs", 0, "probability"), 1),
    "label unknown": _set(("outputs", 0, "label"), "Maybe"),
    "is_outlier as 0": _set(("outputs", 0, "is_outlier"), 0),
    "is_outlier as 'yes'": _set(("outputs", 0, "is_outlier"), "yes"),
    "is_outlier null": _set(("outputs", 0, "is_outlier"), None),
    "negative latency": _set(("latency_ms",), -1.0),
    "request_id null": _set(("request_id",), None),
    "model_version as int": _set(("model_version",), 7),
    "non-ASCII request id": _set(("request_id",), "café-☕"),
    "simulated null": _set(("simulated",), None),
    "simulated missing (older lines)": _drop(("simulated",)),
    "simulated false": _set(("simulated",), False),
    "simulated as 'yes'": _set(("simulated",), "yes"),
    "simulated as 2": _set(("simulated",), 2),
}

RAW = {
    "truncated": lambda line: line[: len(line) // 2],
    "two objects on a line": lambda line: line + line,
    "trailing garbage": lambda line: line + " x",
    "duplicate key": lambda line: line.replace(
        '"latency_ms":', '"latency_ms":1.0,"latency_ms":', 1
    ),
    "NaN probability": lambda line: line.replace('"probability":0.0', '"probability":NaN', 1),
    "infinite latency": lambda line: line.replace('"latency_ms":0.0', '"latency_ms":Infinity', 1),
    "minus infinite latency": lambda line: line.replace(
        '"latency_ms":0.0', '"latency_ms":-Infinity', 1
    ),
    "NaN latency": lambda line: line.replace('"latency_ms":0.0', '"latency_ms":NaN', 1),
    "leading spaces": lambda line: "   " + line,
    "trailing vertical tab": lambda line: line + "\v",
    "a JSON array": lambda line: "[" + line + "]",
    "null": lambda line: "null",
    "plain text": lambda line: "INFO: 127.0.0.1 POST /predict 200",
    "no-break space only": lambda line: "\u00a0",
    "whitespace only": lambda line: " \t ",
    "CRLF ending": lambda line: line + "\r",
}


def _corpus(lines: list[str]) -> bytes:
    """Valid lines with every break and replay spliced in, blank lines, a BOM and bad UTF-8."""
    out = ["\ufeff" + lines[0], ""]
    breaks = [*BREAKS.values()]
    raws = [*RAW.values()]
    for i, line in enumerate(lines[1:], start=1):
        if i % 3 == 0 and breaks:
            out.append(_edit(line, breaks.pop()))
        elif i % 3 == 1 and raws:
            out.append(raws.pop()(line))
        else:
            out.append(line)
    assert not breaks and not raws, "corpus too short for every break"
    out += _replays(lines)
    data = "\n".join(out).encode()
    bad_utf8 = lines[-1].replace('"request_id":"', '"request_id":"\udcff', 1)
    return data + b"\n" + bad_utf8.encode("utf-8", "surrogateescape")  # no final newline


def _replays(lines: list[str]) -> list[str]:
    """Lines repeating an earlier request_id: exact copies, an altered copy, a replay of a replay,
    and a valid line whose id only a rejected line had before (that one is the first)."""
    altered = _edit(lines[5], _set(("inputs", 0, "Age"), 30))
    rejected_first = _edit(lines[12], _set(("request_id",), "seen-only-broken"))
    broken = _edit(rejected_first, _set(("inputs", 0, "Age"), 7))
    return [lines[2], altered, lines[2], lines[41], broken, rejected_first, rejected_first]


def _reference(paths, rejected, duplicates=None):
    """The line reader; replays dropped (and listed in ``duplicates``) when it is given."""
    records = inference_log.read_records(paths, rejected=rejected)
    if duplicates is not None:
        records = inference_log.unique_requests(records, duplicates)
    return inference_log.records_to_frame(records)


def _columnar(paths, rejected, chunk_bytes=log_reader.CHUNK_BYTES, duplicates=None):
    batches = log_reader.export_batches(paths, chunk_bytes)
    if duplicates is None:
        return log_reader.read_frame(batches, rejected)
    return log_reader.read_frame(batches, rejected, duplicates)


@pytest.mark.parametrize("chunk_bytes", [log_reader.CHUNK_BYTES, 3000, 50_000])
def test_same_frame_and_rejections_as_the_line_reader(tmp_path, lines, chunk_bytes):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    path.write_bytes(_corpus(lines))
    expected_rejected, expected_duplicates = [], []
    expected = _reference([path], expected_rejected, expected_duplicates)
    rejected, duplicates = [], []
    frame = _columnar([path], rejected, chunk_bytes, duplicates)
    pd.testing.assert_frame_equal(frame, expected)
    assert rejected == expected_rejected and duplicates == expected_duplicates
    # The corpus really exercises both verdicts, the lax coercions and the replays.
    assert 25 < len(rejected) < 70
    assert len(frame) > 400 and len(set(frame.request_id)) > 130
    replayed = [json.loads(lines[i])["request_id"] for i in (2, 5, 2, 41)]
    assert duplicates == [*replayed, "seen-only-broken"]
    assert frame.request_id.value_counts().max() == 3  # each request once, its 3 records
    first_age = json.loads(lines[5])["inputs"][0]["Age"]  # the altered replay said 30
    assert frame.loc[frame.request_id == replayed[1], "Age"].iloc[0] == first_age != 30


def test_coercions_are_accepted_with_the_models_values(tmp_path, lines):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    changed = [
        _edit(lines[0], _set(("inputs", 0, "Age"), 41.0)),
        _edit(lines[1], _set(("inputs", 0, "Age"), 42.0)),
        _edit(lines[2], _drop(("event",))),
        _edit(lines[3], _set(("timestamp",), "2026-11-20T21:30:00-02:00")),
    ]
    path.write_text("\n".join([*changed, *lines[4:10]]) + "\n")
    frame = _columnar([path], rejected := [])
    assert not rejected and len(frame) == 30
    assert frame["Age"].iloc[[0, 3]].tolist() == [41, 42]
    assert frame["timestamp"].iloc[9] == pd.Timestamp("2026-11-20T23:30:00Z")
    assert frame["request_id"].tolist()[::3] == [json.loads(x)["request_id"] for x in lines[:10]]


@pytest.mark.parametrize(
    ("field", "value"),
    [("JobLevel", "1"), ("JobLevel", True), ("StockOptionLevel", False)],
    ids=["text", "true", "false"],
)
def test_both_readers_refuse_what_the_request_model_refuses(tmp_path, lines, field, value):
    """A log line holds what the API accepted: "1" or a boolean in an integer field is refused
    by both readers as the request model refuses it, even where 1 (or 0) is in range."""
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    path.write_text(_edit(lines[0], _set(("inputs", 0, field), value)) + "\n" + lines[1])
    frame = _columnar([path], rejected := [])
    assert len(rejected) == 1 and field in rejected[0] and len(frame) == 3
    pd.testing.assert_frame_equal(frame, _reference([path], reference_rejected := []))
    assert reference_rejected == rejected


def test_lines_from_before_the_simulated_field_stay_on_the_fast_path(tmp_path, lines, monkeypatch):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    older = [_edit(line, _drop(("simulated",))) for line in lines[:50]]
    path.write_text("\n".join(older) + "\n")
    slow: list[int] = []
    original = log_reader._Reader._line
    monkeypatch.setattr(
        log_reader._Reader, "_line", lambda self, *a: slow.append(1) or original(self, *a)
    )
    frame = _columnar([path], rejected := [])
    assert not rejected and not slow and len(frame) == 150 and not frame["simulated"].any()
    pd.testing.assert_frame_equal(frame, _reference([path], []))


def test_a_malformed_line_raises_without_a_rejects_list(tmp_path, lines):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    path.write_text(lines[0] + "\n" + _edit(lines[1], _set(("inputs", 0, "Age"), 7)) + "\n")
    with pytest.raises(ValidationError, match="Age"):
        _columnar([path], None)


def test_rejections_name_file_line_and_problem(tmp_path, lines):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    broken = _edit(lines[1], _set(("inputs", 2, "Department"), "Marketing"))
    path.write_text(lines[0] + "\n\n" + broken + "\n" + lines[2] + "\n")
    frame = _columnar([path], rejected := [])
    assert len(frame) == 6
    assert len(rejected) == 1 and rejected[0].startswith(f"{path}:3: Input should be ")
    assert rejected[0].endswith("at ('inputs', 2, 'Department')")


def test_empty_and_missing_input(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n \n")
    frame = _columnar([path], [])
    assert list(frame.columns) == list(log_reader.COLUMNS) and frame.empty
    pd.testing.assert_frame_equal(frame, _reference([path], []))
    assert _columnar([], []).empty


def test_arrow_schema_follows_the_contract():
    employee = log_reader.arrow_schema().field("inputs").type.value_type
    assert [employee.field(i).name for i in range(employee.num_fields)] == list(
        contract.INPUT_COLUMNS
    )


def test_timestamps_parsed_by_arrow_equal_pydantics():
    import pyarrow as pa
    from pydantic import AwareDatetime, TypeAdapter

    texts = [
        "2026-11-20T00:00:00.000+00:00",
        "2026-11-20T23:30:00-02:00",
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00.5+05:30",
        "2024-02-29T10:00:00.123456+00:00",
        "2026-11-20T10:00:00+23:59",
    ]
    stamps, ok = log_reader._aware_timestamps(
        pa.chunked_array([pa.array(texts, pa.large_string())])
    )
    assert ok.all()
    assert stamps.to_pylist() == [TypeAdapter(AwareDatetime).validate_python(t) for t in texts]
    # One value Arrow would not take (not a real date): pydantic judges the whole column.
    stamps, ok = log_reader._aware_timestamps(
        pa.chunked_array([pa.array([texts[0], "2026-02-30T10:00:00+00:00"], pa.large_string())])
    )
    assert ok.tolist() == [True, False] and stamps.to_pylist()[1] is None


def _both_readers(paths, replays: bool = False) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The columnar reader's (frame, rejected, duplicates), checked equal to the line reader's.

    Without ``replays`` nothing is asked about duplicates (the readers' older interface).
    """
    expected_rejected, expected_duplicates = [], [] if replays else None
    expected = _reference(paths, expected_rejected, expected_duplicates)
    duplicates = [] if replays else None
    frame = _columnar(paths, rejected := [], duplicates=duplicates)
    pd.testing.assert_frame_equal(frame, expected)
    assert (rejected, duplicates) == (expected_rejected, expected_duplicates)
    return frame, rejected, duplicates


def test_a_line_stamped_outside_its_partition_day_is_rejected_by_both_readers(tmp_path, lines):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    stamps = [
        "2026-04-12T10:00:00.000+00:00",
        "2026-11-21T00:00:00+00:00",
        "2026-11-20T00:00:00+00:00",
        "2026-11-20T23:59:59.999+00:00",
        "2026-11-20T23:30:00-02:00",
    ]
    edited = [
        _edit(line, _set(("timestamp",), stamp))
        for line, stamp in zip(lines[:5], stamps, strict=True)
    ]
    path.write_text("\n".join(edited) + "\n")
    frame, rejected, _ = _both_readers([path])
    assert len(frame) == 6  # the two lines inside 2026-11-20 (UTC), 3 records each
    assert rejected == [
        f"{path}:1: timestamp 2026-04-12T10:00:00+00:00 is outside its partition "
        "date=2026-11-20 at ('timestamp',)",
        f"{path}:2: timestamp 2026-11-21T00:00:00+00:00 is outside its partition "
        "date=2026-11-20 at ('timestamp',)",
        f"{path}:5: timestamp 2026-11-21T01:30:00+00:00 is outside its partition "
        "date=2026-11-20 at ('timestamp',)",
    ]


def test_a_file_outside_a_partition_has_no_day_to_keep_to(tmp_path, lines):
    path = tmp_path / "loose.jsonl"
    path.write_text(_edit(lines[0], _set(("timestamp",), "2026-04-12T10:00:00+00:00")) + "\n")
    frame, rejected, _ = _both_readers([path])
    assert len(frame) == 3 and not rejected


def test_non_finite_latency_is_rejected_by_both_readers(tmp_path, lines):
    path = tmp_path / "date=2026-11-20" / "1-x.jsonl"
    path.parent.mkdir()
    values = ["Infinity", "-Infinity", "NaN", "1e999", "12.5"]
    texts = [
        line.replace('"latency_ms":0.0', f'"latency_ms":{value}', 1)
        for line, value in zip(lines[:5], values, strict=True)
    ]
    path.write_text("\n".join(texts) + "\n")
    frame, rejected, _ = _both_readers([path])
    assert len(frame) == 3  # only the finite latency
    assert [r.split(": ", 1)[0] for r in rejected] == [f"{path}:{n}" for n in (1, 2, 3, 4)]
    assert all("finite number" in r and "('latency_ms',)" in r for r in rejected)


def test_a_replayed_request_is_read_once_first_occurrence_wins(tmp_path, lines):
    folder = tmp_path / "date=2026-11-20"
    folder.mkdir()
    (folder / "1-a.jsonl").write_text("\n".join(lines[:3]) + "\n")
    replay = _edit(lines[1], _set(("inputs", 0, "Age"), 30))  # same request_id, other content
    (folder / "2-b.jsonl").write_text("\n".join([lines[1], lines[3], replay, lines[0]]) + "\n")
    paths = sorted(folder.glob("*.jsonl"))
    assert len(_columnar(paths, [])) == 12  # 4 requests of 3 records, not 7 (the replays)
    frame, rejected, duplicates = _both_readers(paths, replays=True)
    ids = [json.loads(line)["request_id"] for line in lines[:4]]
    assert not rejected and duplicates == [ids[1], ids[1], ids[0]]
    assert frame["request_id"].tolist()[::3] == ids and len(frame) == 12
    assert frame["Age"].iloc[3] == json.loads(lines[1])["inputs"][0]["Age"] != 30
