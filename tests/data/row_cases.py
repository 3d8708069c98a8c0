"""One table of row-validity cases, held against every engine that checks an employee record.

The rules are declared once, per field, in ``data/contract.py`` (range, categories and aliases,
integer or text, required); each engine compiles them its own way (see docs/architecture.md,
"Row rules"). This table says, rule by rule, which values are valid; ``test_row_rules.py`` runs
every case through every engine and fails on any verdict that differs from the table.

Values are written relative to each field's declaration (a bound and its neighbours, a category
and its near misses), so the table covers every field of the contract and follows it when it
changes; the verdicts are the rules' meaning, written here by hand.

Engines (names used in ``differs``):

- ``pandas``: ``data.validation`` (the reference: CSV and Parquet snapshots, batch triage);
- ``arrow``: ``scoring.columns.check_batch`` (the batch scorer's vectorised check);
- ``request``: ``serving.schemas.EmployeeRecord`` (the API's request model);
- ``log``: ``data.inference_log.InferenceRecord`` (a logged line, as the drift job parses it);
- ``log_arrow``: ``monitoring.log_columns`` (the columnar log reader's checks).

Where engines legitimately differ, the case says which (``differs``) and :data:`WHY` says why:
each difference is one of input domain, not of rule. Text cells (``" 41 "``) are judged only by
the engines that read text, and the identifier only by the input engines (the log holds a
pseudonym, whose pattern tests/monitoring/test_log_schema.py checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from attrition_mlops.data import contract

ENGINES = ("pandas", "arrow", "request", "log", "log_arrow")
#: Engines that read text cells (CSV): a whole number written as text is that number.
TEXT_ENGINES = ("pandas", "arrow")
#: Engines that read the inference log: values there were normalised before they were written.
LOG_ENGINES = ("log", "log_arrow")

#: The value of a case whose field is left out of the record.
ABSENT = object()

#: Why an engine's verdict differs from the others on a case (keyed by the case's ``rule``).
WHY = {
    "alias": "an alias is normalised on the way in, so a logged record holds the category itself",
}


@dataclass(frozen=True)
class Case:
    """``value`` in ``field`` of an otherwise valid record, judged by each of ``engines``:
    ``valid`` is their verdict, except for those in ``differs``, which give the opposite one."""

    field: str
    rule: str
    value: object
    valid: bool
    differs: frozenset[str] = frozenset()
    engines: tuple[str, ...] = ENGINES

    def expected(self, engine: str) -> bool:
        return self.valid != (engine in self.differs)

    @property
    def id(self) -> str:
        shown = "absent" if self.value is ABSENT else repr(self.value)
        return f"{self.field}-{self.rule}-{shown}"


def _integer_cases(feature: contract.Feature) -> Iterator[Case]:
    name, lo, hi = feature.name, feature.minimum, feature.maximum
    assert lo is not None and hi is not None
    # The identifier never reaches the log (it is pseudonymised): no log engine judges it.
    engines = tuple(e for e in ENGINES if e not in LOG_ENGINES or name != contract.ID_COLUMN)
    for rule, value, valid in [
        ("lowest", lo, True),
        ("highest", hi, True),
        ("below the range", lo - 1, False),
        ("above the range", hi + 1, False),
        ("whole float", float(hi), True),
        ("whole float below the range", float(lo - 1), False),
        ("whole float above the range", float(hi + 1), False),
        ("fraction", lo + 0.5, False),
        ("fraction above the range", hi + 0.5, False),
        ("missing", None, False),
        ("absent", ABSENT, False),
        ("not a number", "many", False),
        # A boolean is not a number, even where 1 or 0 is in range: the request model and the
        # log model are both strict, like the text engines.
        ("boolean", True, False),
        ("boolean", False, False),
    ]:
        yield Case(name, rule, value, valid, engines=engines)
    # A number written as JSON text is refused by the JSON engines; the text engines read every
    # cell as text, so for them it is the text cell f"{lo}" below.
    json_engines = tuple(e for e in engines if e not in TEXT_ENGINES)
    yield Case(name, "number as JSON text", str(lo), False, engines=json_engines)
    # Text cells, as a CSV holds them: only the text engines read these.
    for text, valid in [
        (f"{lo}", True),
        (f" {lo} ", True),
        (f"+{lo}", True),
        (f"{hi}.", True),
        (f"{hi}.00", True),
        (f"00{lo}", True),
        (f"{lo}\u00a0", True),  # str.strip removes a no-break space
        (f"{lo}.5", False),
        (f"{lo}e0", False),
        (f"{hi + 1}", False),
        (f"{lo - 1}", False),
        ("", False),
        ("  ", False),
        ("nan", False),
        ("inf", False),
        ("0x1", False),
        (f"{lo}_0", False),
        ("\u0664\u0661", False),  # Arabic-Indic digits: not ASCII
    ]:
        yield Case(name, "text cell", text, valid, engines=TEXT_ENGINES)


def _category_cases(feature: contract.Feature) -> Iterator[Case]:
    name = feature.name
    for category in feature.categories:
        yield Case(name, "category", category, True)
    first = feature.categories[0]
    for alias in feature.aliases:
        yield Case(name, "alias", alias, True, frozenset(LOG_ENGINES))
    for near_miss in (f" {first}", f"{first} ", first.lower(), first.upper(), ""):
        if near_miss not in feature.allowed_values:
            yield Case(name, "near miss", near_miss, False)
    yield Case(name, "missing", None, False)
    yield Case(name, "absent", ABSENT, False)
    yield Case(name, "number", 1, False)
    # Text cells: a category is matched exactly, never trimmed or case-folded.
    for text, valid in [(first, True), (f"\t{first}", False), (first.swapcase(), False)]:
        yield Case(name, "text cell", text, valid, engines=TEXT_ENGINES)


def _label_cases() -> Iterator[Case]:
    """The label: a column of a labelled snapshot, and the label of each logged prediction
    (the batch scorer ignores a label column; a request has none)."""
    engines = ("pandas", *LOG_ENGINES)
    for label in contract.LABEL_VALUES:
        yield Case(contract.LABEL, "label", label, True, engines=engines)
        for near_miss in (label.lower(), label.upper(), f" {label}", label[0]):
            if near_miss not in contract.LABEL_VALUES:
                yield Case(contract.LABEL, "near miss", near_miss, False, engines=engines)
    for other in ("", None, 1, True):
        yield Case(contract.LABEL, "not a label", other, False, engines=engines)


def row_cases(features: tuple[contract.Feature, ...] | None = None) -> list[Case]:
    """Every case of every field of ``features`` (default: the contract's), of the label, and
    of a field the contract does not know."""
    features = contract.FEATURES if features is None else features
    cases: list[Case] = []
    for feature in features:
        cases += _integer_cases(feature) if feature.is_integer else _category_cases(feature)
    cases += _label_cases()
    cases.append(Case("Salary", "unknown field", 1, False))
    return cases


CASES = row_cases()
