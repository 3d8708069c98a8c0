"""validate_frame against the real IBM HR data, corrupted one cell at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition_mlops.data import contract
from attrition_mlops.data.dataset import bundled_dataset_path
from attrition_mlops.data.validation import DataValidationError, Problem, validate_frame

INTEGER_COLUMNS = [f.name for f in contract.FEATURES if f.is_integer]
TEXT_COLUMNS = [f.name for f in contract.FEATURES if not f.is_integer] + [contract.LABEL]


@pytest.fixture(scope="module")
def pristine() -> pd.DataFrame:
    # Raw text exactly as in the file, the way ingest reads it.
    return pd.read_csv(bundled_dataset_path(), dtype=str, keep_default_na=False)


@pytest.fixture
def raw(pristine: pd.DataFrame) -> pd.DataFrame:
    return pristine.copy()


def _errors(frame: pd.DataFrame, **kwargs) -> DataValidationError:
    with pytest.raises(DataValidationError) as caught:
        validate_frame(frame, **kwargs)
    return caught.value


def _only_problem(frame: pd.DataFrame) -> Problem:
    problems = _errors(frame).problems
    assert len(problems) == 1, problems
    return problems[0]


def test_bundled_data_validates(raw: pd.DataFrame) -> None:
    out = validate_frame(raw)
    assert out.shape == (1470, 35)
    assert tuple(out.columns) == contract.DATASET_COLUMNS
    assert out[contract.LABEL].value_counts().to_dict() == {"No": 1233, "Yes": 237}
    assert all(out[name].dtype == np.dtype("int64") for name in INTEGER_COLUMNS)
    assert all(isinstance(out[name].dtype, pd.StringDtype) for name in TEXT_COLUMNS)
    assert out.loc[0, "Age"] == 41 and out.loc[0, "Department"] == "Sales"


def test_typed_input_gives_the_same_frame(raw: pd.DataFrame) -> None:
    typed = pd.read_csv(bundled_dataset_path())  # ints as int64, text as str
    pd.testing.assert_frame_equal(validate_frame(typed), validate_frame(raw))


def test_columns_are_reordered_and_index_kept(raw: pd.DataFrame) -> None:
    shuffled = raw[list(reversed(raw.columns))].set_axis(range(100, 100 + len(raw)))
    out = validate_frame(shuffled)
    assert tuple(out.columns) == contract.DATASET_COLUMNS
    assert list(out.index) == list(range(100, 100 + len(raw)))


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("Age", "7", "outside [18, 100]"),
        ("Age", "101", "outside [18, 100]"),
        ("EmployeeCount", "2", "outside [1, 1]"),
        ("DailyRate", "-1", "outside [0, 10000]"),
        ("MonthlyIncome", "99999999999999999999", "outside [0, 1000000]"),
        ("Age", "3.5", "not a whole number"),
        ("Age", "abc", "not a whole number"),
        ("Age", "1e400", "not a whole number"),
        ("Age", "NaN", "not a whole number"),
        ("Age", "inf", "not a whole number"),
        ("Age", "\u0664\u0661", "not a whole number"),  # Arabic-Indic digits: rejected, not a crash
        ("Age", "", "blank or missing"),
        ("JobLevel", "  ", "blank or missing"),
        ("Gender", "", "blank or missing"),
        ("Gender", "female", "not one of 'Female', 'Male'"),
        ("Department", "Research_Development", "not one of 'Human Resources'"),
        ("Over18", "N", "not one of 'Y' (or 'Yes')"),
        ("OverTime", " Yes", "not one of 'No', 'Yes'"),
        (contract.LABEL, "Maybe", "not one of 'No', 'Yes'"),
    ],
)
def test_bad_cell_is_named_with_its_row(raw: pd.DataFrame, column, value, what) -> None:
    raw.loc[41, column] = value
    problem = _only_problem(raw)
    assert (problem.column, problem.rows, problem.n_rows) == (column, (42,), 1)
    assert f"{column}: 1 row {what}" in str(problem)
    assert "(row 42" in str(problem)


def test_message_lists_rows_and_offending_values(raw: pd.DataFrame) -> None:
    raw.loc[[4, 16], "Age"] = ["7", "150"]
    message = str(_errors(raw))
    assert "Age: 2 rows outside [18, 100] (rows 5, 17; values 7, 150)" in message
    assert message.startswith("1 problem:\n")


def test_text_values_are_quoted_so_whitespace_shows(raw: pd.DataFrame) -> None:
    raw.loc[[0, 1], "Age"] = ["3.5", "abc"]
    assert "(rows 1, 2; values '3.5', 'abc')" in str(_only_problem(raw))


def test_reported_rows_are_capped_but_counted(raw: pd.DataFrame) -> None:
    raw.loc[0:14, "Gender"] = "X"
    problem = _only_problem(raw)
    assert problem.rows == tuple(range(1, 11)) and problem.n_rows == 15
    assert problem.examples == ("X",)
    assert str(problem).startswith("Gender: 15 rows not one of")
    assert "(rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more; value 'X')" in str(problem)
    assert _errors(raw, max_rows_reported=3).problems[0].rows == (1, 2, 3)


def test_duplicate_ids_name_every_row_sharing_them(raw: pd.DataFrame) -> None:
    raw.loc[[9, 99], contract.ID_COLUMN] = raw.loc[2, contract.ID_COLUMN]
    problem = _only_problem(raw)
    assert problem.column == contract.ID_COLUMN
    assert problem.rows == (3, 10, 100) and problem.examples == (4,)


def test_missing_required_column(raw: pd.DataFrame) -> None:
    problem = _only_problem(raw.drop(columns=["HourlyRate", "Gender"]))
    assert problem.column is None
    assert str(problem) == "missing required columns: Gender, HourlyRate"


def test_label_is_required_by_default(raw: pd.DataFrame) -> None:
    problem = _only_problem(raw.drop(columns=[contract.LABEL]))
    assert str(problem) == f"missing required columns: {contract.LABEL}"


def test_unexpected_column(raw: pd.DataFrame) -> None:
    problem = _only_problem(raw.assign(Salary="1"))
    assert str(problem) == "unexpected columns not in the feature contract: 'Salary'"


def test_duplicated_column_name(raw: pd.DataFrame) -> None:
    doubled = pd.concat([raw, raw[["Age"]]], axis=1)
    assert "duplicated column names: Age" in str(_errors(doubled))


def test_zero_rows(raw: pd.DataFrame) -> None:
    assert str(_only_problem(raw.iloc[0:0])) == "no data rows"


def test_all_problems_are_collected(raw: pd.DataFrame) -> None:
    raw.loc[4, "Age"] = "150"
    raw.loc[9, "MaritalStatus"] = "Widowed"
    raw.loc[11, "TotalWorkingYears"] = ""
    error = _errors(raw.drop(columns=["HourlyRate"]))
    assert [p.column for p in error.problems] == [None, "Age", "MaritalStatus", "TotalWorkingYears"]
    message = str(error)
    assert message.startswith("4 problems:\n")
    for fragment in ("HourlyRate", "Age: 1 row", "(row 5", "MaritalStatus", "(row 10"):
        assert fragment in message


def test_input_is_never_mutated(raw: pd.DataFrame) -> None:
    raw.loc[0, "Over18"] = "Yes"
    before = raw.copy(deep=True)
    validate_frame(raw)
    raw.loc[1, "Age"] = "x"
    before.loc[1, "Age"] = "x"
    _errors(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_over18_alias_is_normalised(raw: pd.DataFrame) -> None:
    raw.loc[[0, 5], "Over18"] = "Yes"
    out = validate_frame(raw)
    assert set(out["Over18"]) == {"Y"}


def test_label_optional_when_not_required(raw: pd.DataFrame) -> None:
    out = validate_frame(raw.drop(columns=[contract.LABEL]), require_label=False)
    assert tuple(out.columns) == contract.INPUT_COLUMNS and len(out) == 1470
    with_label = validate_frame(raw, require_label=False)
    assert tuple(with_label.columns) == contract.DATASET_COLUMNS


def test_label_present_but_not_required_is_still_checked(raw: pd.DataFrame) -> None:
    raw.loc[0, contract.LABEL] = "yes"
    assert _errors(raw, require_label=False).problems[0].column == contract.LABEL


def test_typed_cells_are_checked_too(raw: pd.DataFrame) -> None:
    typed = validate_frame(raw).astype({"Age": "float64", "Gender": object})
    typed.loc[[0, 1, 2], "Age"] = [np.nan, 30.5, np.inf]
    typed.loc[3, "Gender"] = None
    typed["OverTime"] = typed["OverTime"].eq("Yes")  # booleans are not category labels
    typed["JobLevel"] = typed["JobLevel"] > 1  # nor integers
    error = _errors(typed)
    lines = str(error).splitlines()
    assert "  - Age: 1 row blank or missing (row 1)" in lines
    assert "  - Age: 2 rows not a whole number (rows 2, 3; values 30.5, inf)" in lines
    assert "  - Gender: 1 row blank or missing (row 4)" in lines
    assert {p.column for p in error.problems} == {"Age", "Gender", "OverTime", "JobLevel"}


def test_whole_floats_and_padded_integers_are_accepted(raw: pd.DataFrame) -> None:
    raw.loc[[0, 1, 2], "Age"] = ["41.0", " 49 ", "+37"]
    assert validate_frame(raw)["Age"].iloc[:3].tolist() == [41, 49, 37]
