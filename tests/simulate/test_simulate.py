"""The simulator: deterministic, contract-valid, labelled simulated, and each scenario does what
its description says; its CLI sends traffic to a real API on loopback and writes export logs
that the drift job's reader reads back."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime

import joblib
import pandas as pd
import pytest
from support import serve_in_thread

from attrition_mlops.data import contract, inference_log
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.data.snapshots import load_snapshot_partition
from attrition_mlops.data.validation import validate_frame
from attrition_mlops.monitoring.window import read_window
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.settings import ServingSettings
from attrition_mlops.settings import PipelineSettings
from attrition_mlops.simulate import (
    REAL_MAX_EMPLOYEE_NUMBER,
    SCENARIOS,
    TrafficError,
    describe_sent,
    main,
    send_traffic,
    simulate_labelled_snapshot,
    simulate_traffic,
    write_export_logs,
)

N = 5000


@pytest.fixture(scope="module")
def real(snapshot) -> pd.DataFrame:
    return snapshot.frame


@pytest.fixture(scope="module")
def quiet(real) -> pd.DataFrame:
    return simulate_traffic(real, N, seed=5)


def test_registry_has_the_named_scenarios_with_one_line_descriptions():
    names = {
        "none",
        "salary_inflation",
        "overtime_surge",
        "young_hiring_wave",
        "senior_exodus",
        "mean_shift",
    }
    assert set(SCENARIOS) == names
    for name, scenario in SCENARIOS.items():
        assert scenario.name == name and scenario.description and "\n" not in scenario.description


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_frame_other_seed_other_frame(real, scenario):
    first = simulate_traffic(real, 300, scenario=scenario, seed=1)
    pd.testing.assert_frame_equal(first, simulate_traffic(real, 300, scenario=scenario, seed=1))
    assert not first.equals(simulate_traffic(real, 300, scenario=scenario, seed=2))
    labelled = simulate_labelled_snapshot(real, 300, scenario=scenario, seed=1)
    again = simulate_labelled_snapshot(real, 300, scenario=scenario, seed=1)
    pd.testing.assert_frame_equal(labelled, again)


@pytest.mark.parametrize("intensity", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_simulated_frame_passes_the_contract(real, scenario, intensity):
    traffic = simulate_traffic(real, 2000, scenario=scenario, seed=3, intensity=intensity)
    assert list(traffic.columns) == list(contract.INPUT_COLUMNS)
    pd.testing.assert_frame_equal(validate_frame(traffic, require_label=False), traffic)
    labelled = simulate_labelled_snapshot(
        real, 2000, scenario=scenario, seed=3, intensity=intensity
    )
    assert list(labelled.columns) == list(contract.DATASET_COLUMNS)
    pd.testing.assert_frame_equal(validate_frame(labelled), labelled)
    for frame in (traffic, labelled):
        assert (frame["TotalWorkingYears"] <= frame["Age"] - 18).all()
        assert (frame["YearsAtCompany"] <= frame["TotalWorkingYears"]).all()
        for name in ("YearsInCurrentRole", "YearsSinceLastPromotion", "YearsWithCurrManager"):
            assert (frame[name] <= frame["YearsAtCompany"]).all()


def test_real_rows_already_satisfy_the_consistency_rules(real):
    # So the repair step is a no-op on quiet traffic: with noise off, every simulated record is
    # an exact copy of a real one (apart from its fresh ID).
    traffic = simulate_traffic(real, 1000, seed=9, noise=0.0)
    columns = [c for c in contract.INPUT_COLUMNS if c != contract.ID_COLUMN]
    matched = traffic[columns].merge(real[columns].drop_duplicates(), how="left", indicator=True)
    assert (matched["_merge"] == "both").all()


@pytest.mark.parametrize("labelled", [False, True])
def test_simulated_records_are_labelled_and_never_reuse_real_ids(real, labelled):
    make = simulate_labelled_snapshot if labelled else simulate_traffic
    frame = make(real, 1000, scenario="none", seed=4)
    assert frame.attrs["is_simulated"] is True
    assert frame.attrs["simulation"] == {
        "scenario": "none",
        "seed": 4,
        "intensity": 1.0,
        "noise": 0.02,
    }
    ids = frame[contract.ID_COLUMN]
    assert ids.min() == REAL_MAX_EMPLOYEE_NUMBER + 1 and ids.is_unique
    assert not ids.isin(real[contract.ID_COLUMN]).any()
    # Simulating from simulated rows continues above those IDs too.
    follow_up = simulate_traffic(frame, 10, seed=1)
    assert follow_up[contract.ID_COLUMN].min() == ids.max() + 1


def test_quiet_traffic_keeps_the_real_distribution(real, quiet):
    for feature in contract.FEATURES:
        if feature.role != "model":
            continue
        if feature.kind == "categorical":
            gap = (quiet[feature.name].value_counts(normalize=True)).sub(
                real[feature.name].value_counts(normalize=True), fill_value=0
            )
            assert gap.abs().max() < 0.03, feature.name
        else:
            sd = real[feature.name].std()
            assert abs(quiet[feature.name].mean() - real[feature.name].mean()) < 0.06 * sd


@pytest.mark.parametrize("intensity", [1.0, 0.5])
def test_salary_inflation_raises_mean_income_by_15_percent_times_intensity(real, quiet, intensity):
    frame = simulate_traffic(real, N, scenario="salary_inflation", seed=5, intensity=intensity)
    ratio = frame["MonthlyIncome"].mean() / quiet["MonthlyIncome"].mean()
    assert ratio == pytest.approx(1 + 0.15 * intensity, abs=0.002)
    assert frame["Age"].equals(quiet["Age"])  # same seed, same resampled rows


@pytest.mark.parametrize(("intensity", "target"), [(1.0, 0.60), (0.5, None)])
def test_overtime_surge_moves_the_overtime_share(real, intensity, target):
    frame = simulate_traffic(real, N, scenario="overtime_surge", seed=6, intensity=intensity)
    base = real["OverTime"].eq("Yes").mean()
    expected = target if target is not None else base + (0.60 - base) * intensity
    assert frame["OverTime"].eq("Yes").mean() == pytest.approx(expected, abs=0.025)


def test_young_hiring_wave_adds_young_entry_level_records(real, quiet):
    frame = simulate_traffic(real, N, scenario="young_hiring_wave", seed=5)
    young_share = (real["Age"] <= 25).mean()
    assert (frame["Age"] <= 25).mean() == pytest.approx(0.30 + 0.70 * young_share, abs=0.025)
    assert frame["Age"].mean() < quiet["Age"].mean() - 3
    new = frame[(frame["Age"] <= 25) & (frame["YearsAtCompany"] <= 1)]
    assert (new["JobLevel"] == 1).mean() > 0.9
    assert frame["JobLevel"].eq(1).mean() > quiet["JobLevel"].eq(1).mean() + 0.15


@pytest.mark.parametrize("feature", ["MonthlyIncome", "Age", "DistanceFromHome"])
def test_mean_shift_moves_one_feature_by_k_reference_sds(real, quiet, feature):
    sd = float(real[feature].std())
    shifted = simulate_traffic(
        real, N, scenario="mean_shift", seed=5, intensity=0.25, feature=feature
    )
    assert shifted[feature].mean() - quiet[feature].mean() == pytest.approx(0.25 * sd, rel=0.05)
    others = [c for c in ("JobLevel", "OverTime", "Gender") if c != feature]
    pd.testing.assert_frame_equal(shifted[others], quiet[others])
    explicit = simulate_traffic(
        real, N, scenario="mean_shift", seed=5, intensity=1.0, feature=feature, reference_sd=2.0
    )
    assert explicit[feature].mean() - quiet[feature].mean() == pytest.approx(2.0, abs=0.15)


def test_labelled_snapshot_labels_move_in_the_scenarios_direction(real):
    rates = {
        name: simulate_labelled_snapshot(real, N, scenario=name, seed=8)["Attrition"]
        .eq("Yes")
        .mean()
        for name in SCENARIOS
    }
    base = real["Attrition"].eq("Yes").mean()
    assert rates["none"] == pytest.approx(base, abs=0.02)
    assert rates["mean_shift"] == rates["none"]  # a pure covariate shift
    assert rates["salary_inflation"] < rates["none"] - 0.015
    assert rates["overtime_surge"] > rates["none"] + 0.03
    assert rates["young_hiring_wave"] > rates["none"] + 0.02


def test_bad_requests_are_clear_errors(real):
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate_traffic(real, 10, scenario="tsunami", seed=1)
    with pytest.raises(ValueError, match="numeric model feature"):
        simulate_traffic(real, 10, scenario="mean_shift", seed=1, feature="EmployeeNumber")
    with pytest.raises(ValueError, match="Attrition"):
        simulate_labelled_snapshot(real.drop(columns="Attrition"), 10, scenario="none", seed=1)
    with pytest.raises(ValueError, match="n >= 1"):
        simulate_traffic(real, 0, seed=1)


# --- Delivery: export logs, the API over real HTTP, the command line ---------------------------

DAY = date(2026, 11, 20)
KEY = "simulator-tests-pseudonym-key-0123"
NOT_ID = [c for c in contract.INPUT_COLUMNS if c != contract.ID_COLUMN]


def _logged_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[NOT_ID].reset_index(drop=True)


def test_export_logs_are_read_back_by_the_drift_job_reader(tmp_path, real):
    traffic = simulate_traffic(real, 3000, scenario="overtime_surge", seed=11)
    key = inference_log.Pseudonymiser(KEY.encode())
    path = write_export_logs(
        traffic, tmp_path, DAY, model_name="m", model_version="4", pseudonymise=key, per_request=1
    )
    assert path.parent.name == "date=2026-11-20" and path.name.startswith("simulated-")
    assert "overtime_surge-seed11" in path.name and not list(path.parent.glob(".*"))
    rejected: list[str] = []
    frame = read_window(tmp_path, DAY, DAY, "local", rejected)
    # 3,000 one-record requests all fall inside the day (timestamps spread over it)
    assert len(frame) == 3000 and not rejected
    assert frame["timestamp"].dt.date.eq(DAY).all() and frame["timestamp"].is_monotonic_increasing
    assert frame["request_id"].str.startswith("simulated-overtime_surge-").all()
    assert frame["request_id"].is_unique and frame["model_version"].eq("4").all()
    pd.testing.assert_frame_equal(_logged_inputs(frame), _logged_inputs(traffic))
    assert frame[contract.ID_COLUMN].tolist() == [key(i) for i in traffic[contract.ID_COLUMN]]
    # a second file for the same day adds to the window, never overwrites
    second = write_export_logs(traffic.head(10), tmp_path, DAY, model_name="m", model_version="4")
    assert second != path and len(read_window(tmp_path, DAY, DAY, "local", [])) == 3010


def test_only_simulated_frames_are_delivered(tmp_path, real):
    unlabelled = real[list(contract.INPUT_COLUMNS)].head(20)
    with pytest.raises(ValueError, match="not labelled SIMULATED"):
        write_export_logs(unlabelled, tmp_path, DAY, model_name="m", model_version="1")
    with pytest.raises(ValueError, match="not labelled SIMULATED"):
        send_traffic("http://127.0.0.1:9", unlabelled)
    assert not list(tmp_path.iterdir())


def test_a_failed_export_write_leaves_no_file(tmp_path, real):
    traffic = simulate_traffic(real, 100, seed=12)
    traffic.loc[60, "MonthlyIncome"] = float("nan")  # the log refuses NaN mid-file
    with pytest.raises(ValueError, match="JSON"):
        write_export_logs(traffic, tmp_path, DAY, model_name="m", model_version="1")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, predictor):
    """A tiny real model as a baked model folder (predictor.joblib + model card)."""
    folder = tmp_path_factory.mktemp("model")
    joblib.dump(predictor, folder / "predictor.joblib")
    (folder / "model_card.json").write_text(
        json.dumps({"name": "employee_attrition", "version": "7"})
    )
    return folder


@contextlib.contextmanager
def _serve(tmp_path, model_dir, model_source=None, **overrides):
    """The real API (uvicorn, loopback, free port) in a thread; yields (base URL, export dir)."""
    export = tmp_path / "inference-logs"
    settings = ServingSettings(
        **{
            "model_dir": model_dir,
            "poll_seconds": 0,
            "max_records": 50,
            "log_stdout": False,
            "log_export": True,
            "log_export_dir": export,
            "log_flush_seconds": 0.1,
            "pseudonym_key": KEY,
            **overrides,
        }
    )
    pipeline = PipelineSettings(state_dir=tmp_path / "state", target="local")
    app = create_app(settings, model_source, pipeline=pipeline)
    with serve_in_thread(app) as url:
        yield url, export


def _logged_window(export_dir, n_expected, timeout=15.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while True:
        today = datetime.now(UTC).date()
        frame = read_window(export_dir, today, today, "local", [])
        if len(frame) >= n_expected or time.monotonic() > deadline:
            return frame
        time.sleep(0.1)


@pytest.mark.integration
def test_cli_sends_traffic_to_the_api_and_the_requests_are_identifiable(
    tmp_path, model_dir, real, capsys
):
    with _serve(tmp_path, model_dir) as (url, export):
        manifest = tmp_path / "sent.json"
        argv = [
            "traffic",
            "--scenario",
            "salary_inflation",
            "--records",
            "120",
            "--seed",
            "3",
            "--send",
            url,
            "--batch-size",
            "25",
            "--manifest",
            str(manifest),
        ]
        assert main(argv) == 0
        printed = capsys.readouterr()
        summary = json.loads(printed.out)  # stdout: the JSON for scripts; stderr: for people
        logged = _logged_window(export, 120)
    assert printed.err == (
        "120 SIMULATED records (scenario salary_inflation) in 5 requests: all 120 accepted\n"
    )
    assert summary["records_sent"] == summary["records_accepted"] == 120
    assert summary["requests"] == 5 and summary["status_counts"] == {"200": 5}
    assert summary["simulation"]["scenario"] == "salary_inflation"
    ids = json.loads(manifest.read_text())["request_ids"]
    assert len(ids) == 5
    # the server logged exactly the simulated records, under the ids the manifest lists
    assert len(logged) == 120 and set(logged["request_id"]) == set(ids)
    assert logged["model_version"].eq("7").all()
    expected = simulate_traffic(real, 120, scenario="salary_inflation", seed=3)
    pd.testing.assert_frame_equal(_logged_inputs(logged), _logged_inputs(expected))


@pytest.mark.integration
def test_send_traffic_counts_rejections_and_stops_on_auth_and_server_errors(
    tmp_path, model_dir, real, monkeypatch
):
    traffic = simulate_traffic(real, 130, seed=1)
    with _serve(tmp_path, model_dir, api_key="s3cret-key") as (url, _):
        ok = send_traffic(url + "/", traffic, batch_size=50, api_key="s3cret-key")
        assert (ok["records_accepted"], ok["status_counts"]) == (130, {"200": 3})
        # 60, 60, 10 records against the API's 50-record limit: two counted 422s, one 200
        big = send_traffic(url, traffic, batch_size=60, api_key="s3cret-key")
        assert big["records_accepted"] == 10 and big["status_counts"] == {"200": 1, "422": 2}
        assert big["first_error"]["status"] == 422 and big["first_error"]["records"] == [0, 60]
        assert describe_sent(big) == (
            "130 SIMULATED records (scenario none) in 3 requests: 10 accepted; "
            "2 requests refused (2 × HTTP 422)"
        )
        with pytest.raises(TrafficError, match="HTTP 401 after 0 requests"):
            send_traffic(url, traffic, api_key="wrong")
        monkeypatch.setenv("SIM_TEST_KEY", "s3cret-key")
        cli = ["traffic", "--records", "10", "--send", url, "--api-key-env", "SIM_TEST_KEY"]
        assert main(cli) == 0
        monkeypatch.delenv("SIM_TEST_KEY")
        assert main(cli) == 2  # the named variable is unset: a clear error, nothing sent

    class NothingDeployed:  # the real app without a model answers 503
        description = "nothing deployed"

        def current_version(self):
            return None

        def load(self):
            from attrition_mlops.serving.sources import NoModelAvailableError

            raise NoModelAvailableError("nothing deployed")

    with _serve(tmp_path / "empty", None, NothingDeployed()) as (url, _):
        with pytest.raises(TrafficError, match="HTTP 503"):
            send_traffic(url, traffic)
    with pytest.raises(TrafficError, match="cannot reach"):
        send_traffic(url, traffic)  # the server is gone: connection refused


def test_cli_writes_export_logs_with_the_configured_pseudonym_key(
    tmp_path, real, capsys, monkeypatch
):
    monkeypatch.setenv("SIM_PSEUDONYM_KEY", KEY)
    argv = [
        "traffic",
        "--scenario",
        "young_hiring_wave",
        "--records",
        "400",
        "--seed",
        "2",
        "--export-dir",
        str(tmp_path),
        "--model-version",
        "5",
        "--date",
        "2026-11-20",
        "--pseudonym-key-env",
        "SIM_PSEUDONYM_KEY",
    ]
    assert main(argv) == 0
    written = json.loads(capsys.readouterr().out)
    frame = read_window(tmp_path, DAY, DAY, "local", [])
    expected = simulate_traffic(real, 400, scenario="young_hiring_wave", seed=2)
    assert written["records"] == 400 and written["date"] == "2026-11-20"
    pd.testing.assert_frame_equal(_logged_inputs(frame), _logged_inputs(expected))
    first = inference_log.Pseudonymiser(KEY.encode())(REAL_MAX_EMPLOYEE_NUMBER + 1)
    assert frame[contract.ID_COLUMN].iloc[0] == first
    assert main(["traffic", "--records", "5", "--export-dir", str(tmp_path)]) == 2
    assert "--model-version" in capsys.readouterr().err


def test_cli_snapshot_is_a_valid_labelled_data_set(tmp_path, real, capsys):
    out = tmp_path / "simulated-overtime.csv"
    argv = ["snapshot", "--scenario", "overtime_surge", "--rows", "600", "--seed", "4"]
    assert main([*argv, "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    loaded = load_snapshot(out)  # what the training job reads: contract-valid, 35 columns
    expected = simulate_labelled_snapshot(real, 600, scenario="overtime_surge", seed=4)
    pd.testing.assert_frame_equal(loaded.frame, expected, check_dtype=False)
    label = json.loads(out.with_name(out.name + ".simulation.json").read_text())
    assert label["is_simulated"] is True and label["scenario"] == "overtime_surge"
    assert label["attrition_yes"] == summary["attrition_yes"] == loaded.label_counts["Yes"]
    assert main([*argv, "--output", str(tmp_path / "hr.csv")]) == 2
    assert "simulated" in capsys.readouterr().err and not (tmp_path / "hr.csv").exists()


def test_cli_snapshot_can_go_straight_into_a_dated_partition(state_dir, real, capsys):
    argv = ["snapshot", "--scenario", "overtime_surge", "--rows", "600", "--seed", "4"]
    assert main([*argv, "--as-of", "2026-12-01"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert stored["is_simulated"] is True and stored["added"] is True
    assert stored["source"].startswith("SIMULATED labelled snapshot (scenario=overtime_surge, ")
    assert stored["as_of"] == "2026-12-01" and stored["rows"] == 600
    loaded = load_snapshot_partition(date(2026, 12, 1), state_dir / "snapshots")
    expected = simulate_labelled_snapshot(real, 600, scenario="overtime_surge", seed=4)
    pd.testing.assert_frame_equal(loaded.snapshot.frame, expected, check_dtype=False)
    assert main([*argv, "--as-of", "2026-12-01"]) == 0  # the same simulation again: a no-op
    assert json.loads(capsys.readouterr().out)["added"] is False
    assert main([*argv[:-1], "5", "--as-of", "2026-12-01"]) == 2  # other rows: immutable
    assert "already exists" in capsys.readouterr().err


@pytest.mark.integration  # starts a subprocess
def test_cli_lists_scenarios_as_a_module():
    listed = subprocess.run(
        [sys.executable, "-m", "attrition_mlops.simulate", "scenarios"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names == list(SCENARIOS)
    with pytest.raises(SystemExit) as bad:
        main(["traffic", "--scenario", "tsunami", "--records", "5", "--export-dir", "x"])
    assert bad.value.code == 2


def test_senior_exodus_is_a_concept_shift_inputs_unchanged_labels_flipped(real):
    quiet = simulate_labelled_snapshot(real, 3000, scenario="none", seed=8)
    shifted = simulate_labelled_snapshot(real, 3000, scenario="senior_exodus", seed=8)
    inputs = list(contract.INPUT_COLUMNS)
    pd.testing.assert_frame_equal(quiet[inputs], shifted[inputs])  # the inputs do not move
    senior = (shifted["YearsAtCompany"] >= 10).to_numpy()
    before = (quiet[contract.LABEL] == "Yes").to_numpy()
    after = (shifted[contract.LABEL] == "Yes").to_numpy()
    assert (after[~senior] == before[~senior]).all()  # only long-tenured employees change
    flipped = (after & ~before)[senior & ~before].mean()
    assert 0.30 < flipped < 0.40  # 35 % of their "No" labels


def test_without_replacement_each_real_row_is_drawn_once(real):
    # The real rows' integer fields (the noised pay fields aside) identify each employee.
    noisy = {"EmployeeNumber", "DailyRate", "HourlyRate", "MonthlyIncome", "MonthlyRate"}
    key = [f.name for f in contract.FEATURES if f.is_integer and f.name not in noisy]
    assert not real[key].duplicated().any()
    once = simulate_labelled_snapshot(real, 1000, scenario="none", seed=1, replace=False)
    assert len(once) == 1000 and not once[key].duplicated().any()
    again = simulate_labelled_snapshot(real, 1000, scenario="none", seed=1)  # with replacement
    assert again[key].duplicated().sum() > 100
    with pytest.raises(ValueError, match="without replacement"):
        simulate_labelled_snapshot(real, len(real) + 1, scenario="none", seed=1, replace=False)
