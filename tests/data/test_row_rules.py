"""Every engine that checks an employee record gives the verdicts of one table (row_cases.py).

Five engines compile the contract's row rules their own way: pandas validation, the batch
scorer's Arrow check, the API's request model, the logged record model and the columnar log
reader. Each test runs the whole table through one engine; a disagreement names the cases.
The last tests change the contract and show that every engine follows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from pydantic import BaseModel, ValidationError, create_model
from row_cases import ABSENT, CASES, ENGINES, TEXT_ENGINES, WHY, Case, row_cases

from attrition_mlops.data import contract, inference_log
from attrition_mlops.data.example import EXAMPLE_RECORD
from attrition_mlops.data.validation import DataValidationError, split_valid_rows, validate_frame
from attrition_mlops.monitoring import log_columns, log_schema
from attrition_mlops.scoring import columns
from attrition_mlops.serving import schemas

_PSEUDONYMISE = inference_log.Pseudonymiser(b"row-cases-test-key")
#: What a log line says about the prediction (the table is about the inputs).
_OUTPUT = {"probability": 0.5, "label": contract.LABEL_VALUES[0], "is_outlier": False}


@dataclass(frozen=True)
class Models:
    """The pydantic models an engine run uses: the shipped ones, or compiled from another
    contract (see :func:`_models`)."""

    request: type[BaseModel] = schemas.EmployeeRecord
    record: type[BaseModel] = inference_log.InferenceRecord


def _record(case: Case, base: dict[str, Any]) -> dict[str, Any]:
    record = dict(base)
    if case.value is ABSENT:
        del record[case.field]
    else:
        record[case.field] = case.value
    return record


def _is_text_case(case: Case) -> bool:
    return case.engines == TEXT_ENGINES


# engines --------------------------------------------------------------------------------------
def _cells(case: Case) -> dict[str, tuple[Any, pa.DataType]]:
    """The record as Arrow cells: every cell as text when the case's value is text in an
    integer field (as a CSV holds it), every integer field as float64 when it is a float there
    (as Parquet written from floats holds it), other values in the type they have (a null in
    its field's type). Few distinct column layouts: cases with the same one share a batch."""
    feature = contract.FEATURES_BY_NAME.get(case.field)
    integer = feature is not None and feature.is_integer
    text = _is_text_case(case) or (integer and type(case.value) is str)
    floats = integer and type(case.value) is float
    cells = {}
    for name, value in _record(case, EXAMPLE_RECORD).items():
        feature = contract.FEATURES_BY_NAME.get(name)
        categorical = name == contract.LABEL or (feature is not None and not feature.is_integer)
        if text:
            cells[name] = (str(value), pa.string())
        elif value is None:
            cells[name] = (None, pa.string() if categorical else pa.int64())
        elif floats and not categorical and type(value) is int:
            cells[name] = (float(value), pa.float64())
        else:
            cells[name] = (value, pa.array([value]).type)
    return cells


def _batches(cases: list[Case], dictionary: bool) -> Iterator[tuple[list[int], pa.RecordBatch]]:
    """The cases as Arrow rows, stacked where their columns' types agree (so stacking changes
    no column's type): (positions in ``cases``, batch) per group. Text categories become a CSV
    reader's dictionaries if asked."""
    groups: dict[tuple[tuple[str, pa.DataType], ...], list[int]] = {}
    rows = [_cells(case) for case in cases]
    for i, cells in enumerate(rows):
        groups.setdefault(tuple((name, kind) for name, (_, kind) in cells.items()), []).append(i)
    for signature, members in groups.items():
        arrays = {}
        for name, kind in signature:
            array = pa.array([rows[i][name][0] for i in members], kind)
            feature = contract.FEATURES_BY_NAME.get(name)
            if dictionary and pa.types.is_string(kind) and feature and not feature.is_integer:
                array = array.dictionary_encode()
            arrays[name] = array
        yield members, pa.RecordBatch.from_pydict(arrays)


def _pandas(cases: list[Case], models: Models) -> list[bool | None]:
    """``split_valid_rows`` (batch triage) on the frames the Arrow rows convert to;
    ``validate_frame`` (whole snapshots) must give the same verdicts."""
    verdicts: list[bool | None] = [None] * len(cases)
    for members, batch in _batches(cases, dictionary=False):
        frame = batch.to_pandas()
        try:
            _, rejects = split_valid_rows(frame)
        except DataValidationError:
            triage = [False] * len(frame)
        else:
            triage = [i not in rejects.index for i in range(len(frame))]
        assert _validate_frame_verdicts(frame) == triage, [cases[i].id for i in members]
        for i, verdict in zip(members, triage, strict=True):
            verdicts[i] = verdict
    return verdicts


def _validate_frame_verdicts(frame: pd.DataFrame) -> list[bool]:
    """Per row, is it free of problems? An identifier shared between rows is not a row's
    problem (rows of the table may share one), so that problem is left out."""
    try:
        validate_frame(frame, require_label=False, max_rows_reported=len(frame))
    except DataValidationError as err:
        problems = [p for p in err.problems if "share an identifier" not in p.message]
        if any(not problem.rows for problem in problems):
            return [False] * len(frame)
        bad = {row - 1 for problem in problems for row in problem.rows}
        return [i not in bad for i in range(len(frame))]
    return [True] * len(frame)


def _arrow(cases: list[Case], models: Models, dictionary: bool = False) -> list[bool | None]:
    """``check_batch``'s verdicts; None where it has no vectorised check for a column's type
    (the scorer then asks pandas validation). Column-level problems: ``split_batch`` raises."""
    verdicts: list[bool | None] = [None] * len(cases)
    for members, batch in _batches(cases, dictionary):
        try:
            columns.split_batch(batch.slice(0, 0))  # column-level problems raise
        except DataValidationError:
            group: list[bool | None] = [False] * len(members)
        else:
            checked = columns.check_batch(batch)
            group = [None] * len(members) if checked is None else (~checked[0]).tolist()
        for i, verdict in zip(members, group, strict=True):
            verdicts[i] = verdict
    return verdicts


def _one_by_one(judge: Callable[[Case, Models], bool | None]):
    def judge_all(cases: list[Case], models: Models) -> list[bool | None]:
        return [judge(case, models) for case in cases]

    return judge_all


def _request(case: Case, models: Models) -> bool:
    try:
        models.request.model_validate(_record(case, EXAMPLE_RECORD))
    except ValidationError:
        return False
    return True


def _log_line(case: Case) -> str:
    """A log line as the API writes it, the case's value in its one logged record."""
    valid = schemas.EmployeeRecord.model_validate(EXAMPLE_RECORD).model_dump()  # normalised
    line = inference_log.build_record(
        timestamp=datetime(2026, 1, 5, 12, tzinfo=UTC),
        request_id="r-1",
        model_name="m",
        model_version="1",
        inputs=[valid],
        outputs=[_OUTPUT],
        latency_ms=1.0,
        pseudonymise=_PSEUDONYMISE,
    )
    if case.field == contract.LABEL:  # the label of the logged prediction
        line["outputs"] = [{**_OUTPUT, "label": case.value}]
    else:
        line["inputs"] = [_record(case, line["inputs"][0])]
    return inference_log.dump_line(line)


def _log(case: Case, models: Models) -> bool:
    try:
        models.record.model_validate_json(_log_line(case))
    except ValidationError:
        return False
    return True


def _log_arrow(case: Case, models: Models) -> bool | None:
    """The columnar reader's verdict; None where Arrow cannot read the line as typed (the
    reader then hands it to the model)."""
    assert models.record is inference_log.InferenceRecord  # the reader's rules are its model's
    data = _log_line(case).encode()
    table = log_columns.read_lines(data, 1)
    return None if table is None else bool(log_columns.Lines.of(table).good()[0])


JUDGES: dict[str, Callable[..., list[bool | None]]] = {
    "pandas": _pandas,
    "arrow": _arrow,
    "request": _one_by_one(_request),
    "log": _one_by_one(_log),
    "log_arrow": _one_by_one(_log_arrow),
}
#: Per engine, the judge it hands a case to when it has no verdict of its own.
FALLBACK = {"arrow": "pandas", "log_arrow": "log"}


def _native(case: Case, engine: str) -> bool:
    """Is the value of a type the engine checks itself (so it must not pass the case on)?"""
    if _is_text_case(case) or case.value is None or case.value is ABSENT:
        return True
    if case.field == contract.LABEL:
        return type(case.value) is str
    feature = contract.FEATURES_BY_NAME.get(case.field)
    if feature is None:  # Arrow's JSON reader refuses a field its schema lacks: the model judges
        return engine != "log_arrow"
    if not feature.is_integer:
        return type(case.value) is str
    # Arrow's JSON reader reads integers only into the log's int64 columns.
    return type(case.value) in ((int,) if engine == "log_arrow" else (int, float))


def _disagreements(engine: str, cases: list[Case], models: Models, **options) -> list[str]:
    cases = [case for case in cases if engine in case.engines]
    verdicts = JUDGES[engine](cases, models, **options)
    passed_on = [i for i, verdict in enumerate(verdicts) if verdict is None]
    found = [
        f"{cases[i].id}: no verdict of its own for a value of its type"
        for i in passed_on
        if _native(cases[i], engine)
    ]
    if passed_on:
        fallback = JUDGES[FALLBACK[engine]]([cases[i] for i in passed_on], models)
        for i, verdict in zip(passed_on, fallback, strict=True):
            verdicts[i] = verdict
    for case, verdict in zip(cases, verdicts, strict=True):
        if verdict != case.expected(engine):
            found.append(f"{case.id}: {'valid' if verdict else 'invalid'}, table says otherwise")
    return found


# the table ------------------------------------------------------------------------------------
def test_the_table_covers_every_field_every_rule_and_every_engine():
    fields = {case.field for case in CASES}
    assert fields >= set(contract.INPUT_COLUMNS)
    for feature in contract.FEATURES:
        rules = {case.rule for case in CASES if case.field == feature.name}
        if feature.is_integer:
            kinds = {"below the range", "above the range", "fraction", "boolean"}
        else:
            kinds = {"category", "near miss", "number"}
        assert rules >= {"missing", "absent", "text cell", *kinds}, feature.name
    judged = {engine: sum(engine in case.engines for case in CASES) for engine in ENGINES}
    assert min(judged.values()) > 300, judged
    for case in CASES:  # every difference between engines is one the table explains
        assert not case.differs or case.rule in WHY, case.id
    assert any(case.valid for case in CASES) and any(not case.valid for case in CASES)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_gives_the_tables_verdicts(engine):
    assert _disagreements(engine, CASES, Models()) == []


def test_the_arrow_check_on_dictionary_columns_gives_the_tables_verdicts():
    text_cases = [case for case in CASES if _is_text_case(case)]
    assert _disagreements("arrow", text_cases, Models(), dictionary=True) == []


# a contract change --------------------------------------------------------------------------
def _changed_contract() -> tuple[contract.Feature, ...]:
    """Age capped at 60 (was 100), a Department added, OverTime's "Yes" aliased as "Y"."""
    departments = contract.FEATURES_BY_NAME["Department"].categories
    changes = {
        "Age": {"maximum": 60},
        "Department": {"categories": (*departments, "Legal")},
        "OverTime": {"aliases": {"Y": "Yes"}},
    }
    return tuple(dataclasses.replace(f, **changes.get(f.name, {})) for f in contract.FEATURES)


def _models() -> Models:
    """The pydantic models compiled from the contract as it stands now."""
    logged = inference_log.logged_employee_model()
    record = create_model(
        "InferenceRecord", __base__=inference_log.InferenceRecord, inputs=(list[logged], ...)
    )
    return Models(request=schemas.employee_model(), record=record)


@pytest.fixture
def changed(monkeypatch) -> tuple[contract.Feature, ...]:
    features = _changed_contract()
    monkeypatch.setattr(contract, "FEATURES", features)
    monkeypatch.setattr(contract, "FEATURES_BY_NAME", {f.name: f for f in features})
    return features


_CHANGED_FIELDS = {"Age", "Department", "OverTime"}


def test_the_change_is_one_the_shipped_engines_would_judge_differently(changed):
    cases = [case for case in row_cases(changed) if case.field in _CHANGED_FIELDS]
    shipped = Models()
    differ = {
        case.id
        for case in cases
        if "request" in case.engines and _request(case, shipped) != case.valid
    }
    # So the next test proves something: the shipped models miss each of the three changes.
    assert differ >= {"Age-above the range-61", "Department-category-'Legal'", "OverTime-alias-'Y'"}


@pytest.mark.parametrize("engine", [engine for engine in ENGINES if engine != "log_arrow"])
def test_every_engine_follows_a_contract_change(changed, engine):
    cases = [case for case in row_cases(changed) if case.field in {*_CHANGED_FIELDS, "Salary"}]
    assert _disagreements(engine, cases, _models()) == []


def test_the_log_readers_column_checks_follow_a_contract_change(changed):
    """The columnar reader's checks are derived from the log model (``log_schema``): the model
    compiled from the changed contract gives checks with the changed range and categories."""
    rules = log_schema.field_rules(_models().record)
    inputs = {rule.name: rule for rule in next(r for r in rules if r.name == "inputs").items}
    assert (inputs["Age"].ge, inputs["Age"].le) == (18, 60)
    assert inputs["Department"].allowed[-1] == "Legal"
    assert "Y" not in inputs["OverTime"].allowed  # a logged record holds no alias
    ages = pa.array([18, 60, 61], pa.int64())
    checks = [pa.array(c).to_pylist() for c in log_schema.column_checks(ages, inputs["Age"])]
    assert [all(row) for row in zip(*checks, strict=True)] == [True, True, False]
