"""The drift job's logic over real log lines in both export formats (traffic is SIMULATED)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from attrition_mlops.data import contract, inference_log
from attrition_mlops.model.profile import build_reference_profile
from attrition_mlops.monitoring.window import check_window, read_window
from attrition_mlops.settings import DriftSettings
from attrition_mlops.simulate import simulate_traffic, simulated_log_lines

DAY = date(2026, 11, 20)
PSEUDONYMISE = inference_log.Pseudonymiser(b"test-key-0123456789abcdef")


def _lines(frame, version, day, prefix="simulated"):
    return simulated_log_lines(
        frame,
        model_name="m",
        model_version=version,
        day=day,
        pseudonymise=PSEUDONYMISE,
        request_id_prefix=prefix,
    )


def _write_local(root, lines, day=DAY):
    folder = root / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{len(list(folder.iterdir()))}.jsonl", "w") as handle:
        handle.writelines(line + "\n" for line in lines)


@pytest.fixture(scope="module")
def profile(snapshot):
    return build_reference_profile(snapshot.frame, source_sha256=snapshot.sha256)


def _traffic(snapshot, scenario="none", n=1000, seed=1):
    return simulate_traffic(snapshot.frame, n, scenario=scenario, seed=seed)


def _check(frame, profile, tmp_path):
    return check_window(frame, lambda version: profile, DriftSettings(), tmp_path / "reports")


def test_quiet_window_from_local_export_is_not_drift(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot), "1", DAY))
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", rejected := [])
    assert len(frame) == 1000 and not rejected
    summary = _check(frame, profile, tmp_path)
    assert summary["status"] == "no_drift" and not summary["drift_confirmed"]
    assert (tmp_path / "reports" / "model_version=1" / "drift_report.html").exists()


def test_salary_inflation_is_confirmed_and_named(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot, "salary_inflation"), "1", DAY))
    summary = _check(read_window(tmp_path / "logs", DAY, DAY, "local", []), profile, tmp_path)
    assert summary["drift_confirmed"] and summary["status"] == "drift"
    assert summary["versions"]["1"]["drifted_features"][0] == "MonthlyIncome"


def test_log_analytics_container_log_export(tmp_path, snapshot, profile):
    lines = list(_lines(_traffic(snapshot, "salary_inflation"), "1", DAY))
    folder = tmp_path / "la" / "y=2026" / "m=11" / "d=20" / "h=01"
    folder.mkdir(parents=True)
    with open(folder / "PT1H.json", "w") as handle:
        for i, line in enumerate(lines):
            # The export may carry LogMessage as a string or as an already-parsed object.
            message = line if i % 2 else json.loads(line)
            handle.write(
                json.dumps(
                    {
                        "TimeGenerated": "2026-11-20T01:00:00Z",
                        "ContainerName": "api",
                        "LogMessage": message,
                    }
                )
                + "\n"
            )
        handle.write(json.dumps({"LogMessage": "INFO: 127.0.0.1 POST /predict 200"}) + "\n")
        handle.write("garbage that is not JSON\n")
    rejected: list[str] = []
    frame = read_window(tmp_path / "la", DAY, DAY, "log-analytics", rejected)
    assert len(frame) == 1000 and len(rejected) == 1 and "not a JSON record" in rejected[0]
    assert frame[contract.ID_COLUMN].str.fullmatch(inference_log.PSEUDONYM_PATTERN).all()
    assert _check(frame, profile, tmp_path)["drift_confirmed"]


def test_each_serving_version_is_checked_against_its_own_profile(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot, seed=2), "1", DAY, "v1"))
    surge = _traffic(snapshot, "overtime_surge", seed=3)
    _write_local(tmp_path / "logs", _lines(surge, "2", DAY, "v2"))  # request ids of its own
    asked: list[str] = []

    def load(version):
        asked.append(version)
        return profile

    frame = read_window(tmp_path / "logs", DAY, DAY, "local", [])
    summary = check_window(frame, load, DriftSettings(), tmp_path / "reports")
    assert sorted(asked) == ["1", "2"]
    assert not summary["versions"]["1"]["drift_confirmed"]
    assert summary["versions"]["2"]["drift_confirmed"] and summary["drift_confirmed"]


def test_window_bounds_and_insufficient_data(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot, n=50), "1", DAY))
    _write_local(
        tmp_path / "logs",
        _lines(_traffic(snapshot), "1", DAY - timedelta(days=3)),
        day=DAY - timedelta(days=3),
    )
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", [])
    assert len(frame) == 50
    summary = _check(frame, profile, tmp_path)
    assert summary["status"] == "insufficient_data" and not summary["drift_confirmed"]
    empty = read_window(
        tmp_path / "logs", DAY + timedelta(days=1), DAY + timedelta(days=1), "local", []
    )
    assert _check(empty, profile, tmp_path)["status"] == "insufficient_data"


def test_simulated_records_are_counted_and_bannered(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot), "1", DAY))
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", [])
    assert frame["simulated"].all()  # simulated_log_lines marks every line
    summary = _check(frame, profile, tmp_path)
    assert summary["n_simulated"] == 1000 == summary["versions"]["1"]["n_simulated"]
    page = (tmp_path / "reports" / "model_version=1" / "drift_report.html").read_text()
    assert "SIMULATED traffic: 1,000 of 1,000 records" in page


def test_unknown_model_version_is_counted_and_the_rest_checked(tmp_path, snapshot, profile):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot), "1", DAY, "known"))
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot, n=40, seed=4), "9", DAY, "stray"))
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", [])
    profiles = {"1": profile}  # what the registry holds
    summary = check_window(frame, profiles.get, DriftSettings(), tmp_path / "reports")
    assert summary["status"] == "no_drift" and list(summary["versions"]) == ["1"]
    assert summary["n_records"] == 1000  # the checked records
    assert summary["unknown_versions"] == {"9": {"lines": 8, "records": 40}}
    assert (summary["n_unknown_version_lines"], summary["n_unknown_version_records"]) == (8, 40)
    page = (tmp_path / "reports" / "model_version=1" / "drift_report.html").read_text()
    assert "8 from model versions not in the registry (40 records)" in page
    assert not (tmp_path / "reports" / "model_version=9").exists()


def test_only_unknown_versions_is_insufficient_data_not_a_crash(tmp_path, snapshot):
    _write_local(tmp_path / "logs", _lines(_traffic(snapshot, n=300), "7", DAY))
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", [])
    summary = check_window(frame, lambda version: None, DriftSettings(), tmp_path / "reports")
    assert summary["status"] == "insufficient_data" and summary["versions"] == {}
    assert summary["n_records"] == 0 and summary["n_unknown_version_records"] == 300


def test_replays_and_rejections_are_counted_in_summary_and_report(tmp_path, snapshot, profile):
    lines = list(_lines(_traffic(snapshot), "1", DAY))
    misfiled = lines[7].replace('"timestamp":"2026-11-20T', '"timestamp":"2026-04-12T', 1)
    assert misfiled != lines[7]
    _write_local(tmp_path / "logs", [*lines[:7], misfiled, *lines[8:]])
    _write_local(tmp_path / "logs", lines[:3])  # a file replayed in part
    rejected, duplicates = [], []
    frame = read_window(tmp_path / "logs", DAY, DAY, "local", rejected, duplicates)
    assert len(frame) == 995 and len(rejected) == 1 and len(duplicates) == 3
    assert "outside its partition date=2026-11-20" in rejected[0]
    summary = check_window(
        frame,
        lambda version: profile,
        DriftSettings(),
        tmp_path / "reports",
        rejected=rejected,
        duplicates=duplicates,
    )
    assert (summary["n_rejected_lines"], summary["n_duplicate_lines"]) == (1, 3)
    assert summary["rejected_lines"] == rejected and summary["n_records"] == 995
    assert summary["duplicate_request_ids"] == [json.loads(x)["request_id"] for x in lines[:3]]
    report = tmp_path / "reports" / "model_version=1"
    assert "1 rejected (invalid), 3 duplicate" in (report / "drift_report.html").read_text()
    left_out = json.loads((report / "drift_summary.json").read_text())["window_lines_left_out"]
    assert left_out["n_duplicate_lines"] == 3 and left_out["n_rejected_lines"] == 1
