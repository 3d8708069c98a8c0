"""SIMULATED outcomes: the simulator's own labels, timed within the horizon, censored on arrival."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from attrition_mlops.data import outcomes as feed
from attrition_mlops.data.dataset import load_snapshot
from attrition_mlops.monitoring.outcomes import join_batch_predictions
from attrition_mlops.simulate import main, simulate_labelled_snapshot
from attrition_mlops.simulate.outcomes import simulate_outcomes

PREDICTED = date(2026, 1, 5)


@pytest.fixture(scope="module")
def employees() -> pd.DataFrame:
    return simulate_labelled_snapshot(load_snapshot().frame, 400, scenario="overtime_surge", seed=3)


def test_outcomes_carry_the_simulators_labels_timed_within_the_horizon(employees) -> None:
    frame = simulate_outcomes(employees, PREDICTED, date(2027, 1, 5), seed=1)
    assert frame.attrs["is_simulated"] is True
    assert frame["EmployeeNumber"].tolist() == employees["EmployeeNumber"].tolist()
    assert frame["left"].tolist() == employees["Attrition"].tolist()
    observed = pd.to_datetime(frame["observed_on"])
    leavers = frame["left"] == "Yes"
    assert observed[leavers].between("2026-01-06", "2027-01-05").all()
    assert (observed[~leavers] == pd.Timestamp("2027-01-05")).all()


def test_only_outcomes_that_have_happened_arrive(employees) -> None:
    early = simulate_outcomes(employees, PREDICTED, date(2026, 4, 1), seed=1)
    assert (early["left"] == "Yes").all()  # stayers are known only at the horizon's end
    assert (pd.to_datetime(early["observed_on"]) <= "2026-04-01").all()
    assert 0 < len(early) < (employees["Attrition"] == "Yes").sum()


def test_cli_writes_a_simulated_partition_the_join_reads_back(employees, tmp_path, capsys) -> None:
    csv = tmp_path / "simulated-overtime.csv"
    employees.to_csv(csv, index=False)
    partition = tmp_path / "predictions" / "run_date=2026-01-05"
    partition.mkdir(parents=True)
    scored = employees.iloc[:300]
    predictions = pd.DataFrame(
        {
            "EmployeeNumber": scored["EmployeeNumber"],
            "probability": 0.2,
            "model_version": "1",
            "run_date": "2026-01-05",
        }
    )
    predictions.to_parquet(partition / "part-00000.parquet")
    root = tmp_path / "outcomes"
    argv = [
        "outcomes",
        "--employees",
        str(csv),
        "--predictions",
        str(partition),
        "--arrived",
        "2027-01-05",
        "--output-dir",
        str(root),
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["is_simulated"] is True and summary["rows_valid"] == 300
    read = feed.read_outcomes(root)
    assert read["simulated"].all()
    joined = join_batch_predictions(predictions, read, horizon="12m", as_of=date(2027, 1, 5))
    expected = (scored["Attrition"] == "Yes").astype(int).tolist()
    assert joined.sort_values("EmployeeNumber")["label"].tolist() == expected
    assert main([*argv[:3], "--arrived", "2027-01-05", "--output-dir", str(root)]) == 2
