"""The outcomes feed: row validation (nothing lost), arrival-day partitions, idempotent reruns."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest

from attrition_mlops.data import outcomes
from attrition_mlops.data.validation import DataValidationError

ARRIVED = date(2026, 6, 1)


def _raw(**columns: list[str]) -> pd.DataFrame:
    base = {
        "EmployeeNumber": ["1"],
        "observed_on": ["2026-01-02"],
        "left": ["Yes"],
        "horizon": ["12m"],
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_valid_rows_are_typed_and_left_is_normalised() -> None:
    raw = pd.DataFrame(
        {
            "EmployeeNumber": ["1", "2"],
            "observed_on": ["2026-01-02", "2026-02-03"],
            "left": [" yes", "NO"],
            "horizon": ["12m", "90d"],
        }
    )
    valid, rejects = outcomes.split_valid_outcomes(raw, arrived=ARRIVED)
    assert rejects.empty
    assert valid["EmployeeNumber"].tolist() == [1, 2]
    assert valid["left"].tolist() == ["Yes", "No"]
    assert valid["observed_on"].tolist() == [date(2026, 1, 2), date(2026, 2, 3)]
    assert valid["horizon"].tolist() == ["12m", "90d"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("EmployeeNumber", "x", "EmployeeNumber: not a whole number"),
        ("EmployeeNumber", "0", "EmployeeNumber: outside [1, 2147483647]"),
        ("EmployeeNumber", "", "EmployeeNumber: blank or missing"),
        ("observed_on", "2026-13-01", "observed_on: not a YYYY-MM-DD date"),
        ("observed_on", "01/02/2026", "observed_on: not a YYYY-MM-DD date"),
        ("observed_on", "2026-06-02", "observed_on: after its arrival day 2026-06-01"),
        ("left", "maybe", "left: not one of No, Yes"),
        ("horizon", "12", "horizon: expected <n>m or <n>d, e.g. 12m"),
        ("horizon", "0m", "horizon: expected <n>m or <n>d, e.g. 12m"),
    ],
)
def test_each_bad_cell_rejects_its_row_with_a_reason(column: str, value: str, reason: str) -> None:
    second = {"EmployeeNumber": ["2"], column: [value]}
    raw = pd.concat([_raw(), _raw(**second)], ignore_index=True)
    valid, rejects = outcomes.split_valid_outcomes(raw, arrived=ARRIVED)
    assert len(valid) + len(rejects) == len(raw)  # nothing lost
    assert valid.index.tolist() == [0] and rejects.index.tolist() == [1]
    assert rejects["reason"].tolist() == [reason]
    assert rejects[column].tolist() == [value]  # kept as received


def test_every_reason_of_a_row_is_listed() -> None:
    raw = _raw(EmployeeNumber=["x"], left=["maybe"])
    _, rejects = outcomes.split_valid_outcomes(raw)
    assert rejects["reason"].tolist() == [
        "EmployeeNumber: not a whole number; left: not one of No, Yes"
    ]


def test_repeats_and_conflicts_are_rejected_not_dropped() -> None:
    raw = pd.DataFrame(
        {
            "EmployeeNumber": ["1", "1", "2", "2", "3"],
            "observed_on": ["2026-01-02"] * 5,
            "left": ["Yes", "yes", "Yes", "No", "No"],
            "horizon": ["12m"] * 5,
        }
    )
    valid, rejects = outcomes.split_valid_outcomes(raw)
    assert valid.index.tolist() == [0, 4]
    assert rejects.loc[1, "reason"] == "repeats row 1"
    assert rejects.loc[[2, 3], "reason"].str.startswith("conflicting").all()


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["EmployeeNumber", "observed_on", "left"], "missing required outcome columns: horizon"),
        (["EmployeeNumber", "observed_on", "left", "horizon", "Age"], "unexpected columns: 'Age'"),
    ],
)
def test_column_problems_fail_the_whole_file(columns: list[str], message: str) -> None:
    raw = pd.DataFrame({name: ["1"] for name in columns})
    with pytest.raises(DataValidationError, match=message):
        outcomes.split_valid_outcomes(raw)


def test_partition_is_written_once_per_delivery_and_rerun_is_idempotent(tmp_path) -> None:
    raw = pd.concat(
        [_raw(), _raw(EmployeeNumber=["2"], left=["No"]), _raw(left=["?"])], ignore_index=True
    )
    first = outcomes.write_outcomes(raw, tmp_path, ARRIVED, simulated=True)
    again = outcomes.write_outcomes(raw, tmp_path, ARRIVED, simulated=True)
    assert first == again
    assert (first.rows_in, first.rows_valid, first.rows_rejected, first.positives) == (3, 2, 1, 1)
    parts = list((tmp_path / "arrived=2026-06-01").glob("*"))
    assert [p.name for p in parts] == [f"part-{first.sha256[:16]}.parquet"]
    meta = pq.read_metadata(parts[0]).metadata
    assert meta[b"attrition.simulated"] == b"true"
    rejects = pd.read_parquet(first.rejects)
    assert rejects["reason"].tolist() == ["left: not one of No, Yes"]
    read = outcomes.read_outcomes(tmp_path)
    assert read["EmployeeNumber"].tolist() == [1, 2]  # no duplicate from the rerun
    assert read["simulated"].all()
    assert read["arrived"].tolist() == [pd.Timestamp(ARRIVED)] * 2
    assert not list(tmp_path.rglob("*.tmp"))


def test_deliveries_sit_side_by_side_and_a_redelivered_fact_counts_once(tmp_path) -> None:
    outcomes.write_outcomes(_raw(), tmp_path, date(2026, 5, 1))
    both = pd.concat([_raw(), _raw(EmployeeNumber=["2"])], ignore_index=True)
    outcomes.write_outcomes(both, tmp_path, ARRIVED)
    read = outcomes.read_outcomes(tmp_path)
    assert read["EmployeeNumber"].tolist() == [1, 2]
    assert read["arrived"].dt.date.tolist() == [date(2026, 5, 1), ARRIVED]  # first arrival kept
    until = outcomes.read_outcomes(tmp_path, arrived_until=date(2026, 5, 31))
    assert until["EmployeeNumber"].tolist() == [1]


def test_a_delivery_without_valid_rows_writes_nothing(tmp_path) -> None:
    with pytest.raises(DataValidationError, match="no valid outcome rows"):
        outcomes.write_outcomes(_raw(left=["?"]), tmp_path, ARRIVED)
    assert not list(tmp_path.iterdir())


def test_horizon_offset() -> None:
    day = pd.Timestamp("2026-01-31")
    assert day + outcomes.horizon_offset("1m") == pd.Timestamp("2026-02-28")
    assert day + outcomes.horizon_offset("90d") == pd.Timestamp("2026-05-01")
    with pytest.raises(ValueError, match="expected <n>m"):
        outcomes.horizon_offset("1y")


def test_csv_and_typed_parquet_deliveries_read_alike(tmp_path) -> None:
    typed = pd.DataFrame(
        {
            "EmployeeNumber": [1, 2],
            "observed_on": [date(2026, 1, 2)] * 2,
            "left": ["Yes", "No"],
            "horizon": ["12m", "12m"],
        }
    )
    typed.to_parquet(tmp_path / "outcomes.parquet")
    typed.to_csv(tmp_path / "outcomes.csv", index=False)
    frames = [
        outcomes.split_valid_outcomes(outcomes.read_outcome_file(tmp_path / name))[0]
        for name in ("outcomes.parquet", "outcomes.csv")
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert frames[0]["EmployeeNumber"].tolist() == [1, 2]
