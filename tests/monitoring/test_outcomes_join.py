"""Joining outcomes to batch predictions and online logs: every rule of the join."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from attrition_mlops.data.inference_log import Pseudonymiser
from attrition_mlops.data.outcomes import read_outcomes, write_outcomes
from attrition_mlops.monitoring.log_reader import export_batches, read_frame
from attrition_mlops.monitoring.outcomes import (
    JOINED_COLUMNS,
    join_batch_predictions,
    join_logged_predictions,
)
from attrition_mlops.monitoring.performance import realized_performance
from attrition_mlops.monitoring.predictions import read_batch_predictions
from attrition_mlops.scoring.batch import score_snapshot
from attrition_mlops.simulate import simulate_labelled_snapshot, write_export_logs
from attrition_mlops.simulate.outcomes import simulate_outcomes

AS_OF = date(2027, 2, 1)


def _predictions(rows: list[tuple[int, str, float]], version: str = "1") -> pd.DataFrame:
    ids, days, probs = zip(*rows, strict=True)
    return pd.DataFrame(
        {"EmployeeNumber": ids, "run_date": days, "probability": probs, "model_version": version}
    )


def _outcomes(rows: list[tuple[int, str, str]], horizon: str = "12m") -> pd.DataFrame:
    ids, days, left = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "EmployeeNumber": ids,
            "observed_on": pd.to_datetime(list(days)),
            "left": left,
            "horizon": horizon,
        }
    )


def _status(joined: pd.DataFrame, employee) -> str:
    return joined.set_index("EmployeeNumber").loc[employee, "status"]


@pytest.mark.parametrize(
    ("outcome", "status", "label"),
    [
        (("2026-03-01", "Yes"), "positive", 1),  # left inside the horizon
        (("2027-01-05", "Yes"), "positive", 1),  # on the horizon's last day: inside
        (("2027-01-06", "Yes"), "negative", 0),  # left after the horizon: stayed through it
        (("2027-01-05", "No"), "negative", 0),  # seen employed at the horizon's end
        (("2026-12-01", "No"), "missing", None),  # seen employed, horizon elapsed, no more news
        (("2026-01-05", "Yes"), "left_before_prediction", None),  # left on the prediction day
    ],
)
def test_one_prediction_one_outcome(outcome, status, label) -> None:
    joined = join_batch_predictions(
        _predictions([(7, "2026-01-05", 0.3)]),
        _outcomes([(7, *outcome)]),
        horizon="12m",
        as_of=AS_OF,
    )
    assert list(joined.columns) == list(JOINED_COLUMNS)
    row = joined.iloc[0]
    assert (row["status"], row["horizon_end"]) == (status, pd.Timestamp("2027-01-05"))
    assert pd.isna(row["label"]) if label is None else row["label"] == label


def test_pending_until_the_horizon_elapses_and_unknown_employees_are_missing_after() -> None:
    predictions = _predictions([(1, "2026-06-01", 0.2), (2, "2025-01-01", 0.4)])
    outcomes = _outcomes([(1, "2026-12-01", "No")])  # neither decides; 2 is unknown to the feed
    joined = join_batch_predictions(predictions, outcomes, horizon="12m", as_of=AS_OF)
    assert _status(joined, 1) == "pending"
    assert _status(joined, 2) == "missing"
    assert joined["label"].isna().all()


def test_outcomes_for_another_horizon_are_ignored() -> None:
    joined = join_batch_predictions(
        _predictions([(7, "2026-01-05", 0.3)]),
        _outcomes([(7, "2026-03-01", "Yes")], "6m"),
        horizon="12m",
        as_of=AS_OF,
    )
    assert _status(joined, 7) == "missing"


def test_many_predictions_per_employee_first_of_each_month_counts() -> None:
    predictions = _predictions(
        [
            (7, "2026-01-20", 0.9),
            (7, "2026-01-05", 0.1),
            (7, "2026-01-31", 0.8),
            (7, "2026-02-01", 0.6),
        ]
    )
    joined = join_batch_predictions(
        predictions, _outcomes([(7, "2026-03-01", "Yes")]), horizon="12m", as_of=AS_OF
    )
    assert joined[["cohort", "probability", "times_scored"]].values.tolist() == [
        ["2026-01", 0.1, 3],
        ["2026-02", 0.6, 1],
    ]
    assert joined["status"].tolist() == ["positive", "positive"]


def test_each_model_version_gets_the_employee_once() -> None:
    predictions = pd.concat(
        [
            _predictions([(7, "2026-01-05", 0.1)], "1"),
            _predictions([(7, "2026-01-06", 0.2)], "2"),
        ]
    )
    joined = join_batch_predictions(
        predictions, _outcomes([(7, "2026-03-01", "Yes")]), horizon="12m", as_of=AS_OF
    )
    assert sorted(joined["model_version"]) == ["1", "2"]
    assert (joined["label"] == 1).all()


def test_the_earliest_departure_decides_over_later_sightings() -> None:
    outcomes = _outcomes(
        [(7, "2026-05-01", "Yes"), (7, "2026-09-01", "Yes"), (7, "2027-02-01", "No")]
    )
    joined = join_batch_predictions(
        _predictions([(7, "2026-01-05", 0.3), (7, "2026-06-10", 0.3)]),
        outcomes,
        horizon="12m",
        as_of=AS_OF,
    )
    assert joined["status"].tolist() == ["positive", "left_before_prediction"]


def test_logs_join_on_the_same_keyed_pseudonym_and_never_hold_raw_ids() -> None:
    pseudonymise = Pseudonymiser(b"k" * 32)
    logs = pd.DataFrame(
        {
            "EmployeeNumber": [pseudonymise(41), pseudonymise(42), pseudonymise(43)],
            "timestamp": pd.to_datetime(
                ["2026-01-05T23:59:59Z", "2026-01-06T00:00:01Z", "2026-01-06T08:00:00Z"], utc=True
            ),
            "probability": [0.7, 0.2, 0.5],
            "model_version": "3",
        }
    )
    outcomes = _outcomes([(41, "2026-01-06", "Yes"), (42, "2027-01-06", "No")])
    joined = join_logged_predictions(logs, outcomes, pseudonymise, horizon="12m", as_of=AS_OF)
    by = joined.set_index("EmployeeNumber")
    assert by.loc[pseudonymise(41), "status"] == "positive"  # left the day after, UTC
    assert by.loc[pseudonymise(42), "status"] == "negative"
    assert by.loc[pseudonymise(43), "status"] == "missing"  # no outcome for this employee
    assert by.loc[pseudonymise(41), "predicted_on"] == pd.Timestamp("2026-01-05")
    assert not joined["EmployeeNumber"].astype(str).isin(["41", "42", "43"]).any()
    other = join_logged_predictions(
        logs, outcomes, Pseudonymiser(b"x" * 32), horizon="12m", as_of=AS_OF
    )
    assert other["label"].isna().all()  # another key matches nobody


def test_the_batch_scorers_partition_joins_its_simulated_outcomes(tmp_path, predictor, snapshot):
    """End to end on real parts: simulate → score (the real job) → SIMULATED outcomes → join."""
    employees = simulate_labelled_snapshot(snapshot.frame, 600, scenario="none", seed=5)
    employees.to_csv(tmp_path / "simulated.csv", index=False)
    day = date(2026, 3, 2)
    score_snapshot(
        tmp_path / "simulated.csv",
        tmp_path / "predictions",
        day,
        predictor,
        model_name="employee_attrition",
        model_version="4",
        progress=False,
    )
    (tmp_path / "predictions" / "_staging" / "run_date=2026-03-03").mkdir(parents=True)
    predictions = read_batch_predictions(tmp_path / "predictions")
    assert read_batch_predictions(tmp_path / "predictions", since=date(2026, 3, 3)).empty
    assert len(read_batch_predictions(tmp_path / "predictions", until=day)) == 600
    for arrived in (date(2026, 9, 1), date(2027, 3, 2)):  # early leavers, then everyone
        outcomes = simulate_outcomes(employees, day, arrived, seed=2)
        write_outcomes(outcomes, tmp_path / "outcomes", arrived, simulated=True)
    joined = join_batch_predictions(
        predictions, read_outcomes(tmp_path / "outcomes"), horizon="12m", as_of=date(2027, 3, 2)
    )
    assert len(joined) == 600 and set(joined["status"]) <= {"positive", "negative"}
    expected = employees.set_index("EmployeeNumber")["Attrition"].eq("Yes").astype(int)
    by_id = joined.set_index("EmployeeNumber")
    assert (by_id["label"].astype(int) == expected.loc[by_id.index]).all()
    row = realized_performance(joined, n_boot=200).iloc[0]
    assert (row["model_version"], row["cohort"], row["label_coverage"]) == ("4", "2026-03", 1.0)
    assert row["auc"] == pytest.approx(
        roc_auc_score(by_id["label"].astype(int), by_id["probability"])
    )


@pytest.mark.parametrize(
    ("as_of", "status"), [(date(2027, 1, 5), "missing"), (date(2027, 1, 4), "pending")]
)
def test_a_horizon_ending_on_the_as_of_day_has_elapsed(as_of, status) -> None:
    joined = join_batch_predictions(
        _predictions([(7, "2026-01-05", 0.3)]),
        _outcomes([(8, "2026-03-01", "Yes")]),
        horizon="12m",
        as_of=as_of,
    )
    assert _status(joined, 7) == status


def test_exported_logs_join_their_simulated_outcomes_by_pseudonym(tmp_path, snapshot) -> None:
    """The API's export format, read by the drift job's reader, joined with the serving key."""
    employees = simulate_labelled_snapshot(snapshot.frame, 200, scenario="none", seed=9)
    traffic = employees.drop(columns="Attrition")
    traffic.attrs = employees.attrs
    key = Pseudonymiser(b"serving-key-" * 3)
    path = write_export_logs(
        traffic,
        tmp_path / "logs",
        date(2026, 3, 2),
        model_name="m",
        model_version="5",
        pseudonymise=key,
    )
    logs = read_frame(export_batches([path]))
    outcomes = simulate_outcomes(employees, date(2026, 3, 2), date(2027, 3, 2), seed=1)
    joined = join_logged_predictions(logs, outcomes, key, horizon="12m", as_of=date(2027, 3, 2))
    assert len(joined) == 200 and joined["label"].notna().all()
    expected = {
        key(i): int(a == "Yes") for i, a in employees[["EmployeeNumber", "Attrition"]].values
    }
    assert joined.set_index("EmployeeNumber")["label"].astype(int).to_dict() == expected
