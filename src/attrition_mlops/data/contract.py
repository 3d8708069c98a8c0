"""The feature contract: the single definition of every column the pipeline reads.

Training, ingest validation, serving request validation, batch scoring and drift all import
from here; nothing else names a column or a category. The data set is IBM HR Analytics Employee
Attrition & Performance in its original 35-column layout (see docs/data.md).

Ranges are *validity* bounds (a value outside them is an error in the record), deliberately wider
than what the data set happens to contain: an unusual but possible value is the outlier
detector's and the drift check's business, not a validation failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSION = "1"

Kind = Literal["numeric", "ordinal", "categorical"]
Role = Literal["model", "identifier", "constant"]


@dataclass(frozen=True)
class Feature:
    """One input column. ``levels`` maps ordinal codes to their survey wording."""

    name: str
    kind: Kind
    role: Role = "model"
    minimum: int | None = None
    maximum: int | None = None
    categories: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    levels: dict[int, str] = field(default_factory=dict)

    @property
    def is_integer(self) -> bool:
        return self.kind in ("numeric", "ordinal")

    @property
    def allowed_values(self) -> tuple[str, ...]:
        """Categories plus accepted aliases (aliases are normalised on ingest)."""
        return self.categories + tuple(self.aliases)


_SATISFACTION = {1: "Low", 2: "Medium", 3: "High", 4: "Very High"}
_YEARS = 70  # a working life; longer tenures are data errors


def _num(name: str, lo: int, hi: int, role: Role = "model") -> Feature:
    return Feature(name, "numeric", role, lo, hi)


def _ord(name: str, lo: int, hi: int, levels: dict[int, str] | None = None) -> Feature:
    return Feature(name, "ordinal", "model", lo, hi, levels=levels or {})


def _cat(name: str, *categories: str, role: Role = "model", **aliases: str) -> Feature:
    return Feature(name, "categorical", role, categories=categories, aliases=aliases)


# Order is the original data set's column order (minus the label).
FEATURES: tuple[Feature, ...] = (
    _num("Age", 18, 100),
    _cat("BusinessTravel", "Non-Travel", "Travel_Frequently", "Travel_Rarely"),
    _num("DailyRate", 0, 10_000),
    _cat("Department", "Human Resources", "Research & Development", "Sales"),
    _num("DistanceFromHome", 0, 1_000),
    _ord(
        "Education",
        1,
        5,
        {1: "Below College", 2: "College", 3: "Bachelor", 4: "Master", 5: "Doctor"},
    ),
    _cat(
        "EducationField",
        "Human Resources",
        "Life Sciences",
        "Marketing",
        "Medical",
        "Other",
        "Technical Degree",
    ),
    _num("EmployeeCount", 1, 1, role="constant"),
    _num("EmployeeNumber", 1, 2_147_483_647, role="identifier"),
    _ord("EnvironmentSatisfaction", 1, 4, _SATISFACTION),
    _cat("Gender", "Female", "Male"),
    _num("HourlyRate", 0, 1_000),
    _ord("JobInvolvement", 1, 4, _SATISFACTION),
    _ord("JobLevel", 1, 5),
    _cat(
        "JobRole",
        "Healthcare Representative",
        "Human Resources",
        "Laboratory Technician",
        "Manager",
        "Manufacturing Director",
        "Research Director",
        "Research Scientist",
        "Sales Executive",
        "Sales Representative",
    ),
    _ord("JobSatisfaction", 1, 4, _SATISFACTION),
    _cat("MaritalStatus", "Divorced", "Married", "Single"),
    _num("MonthlyIncome", 0, 1_000_000),
    _num("MonthlyRate", 0, 1_000_000),
    _num("NumCompaniesWorked", 0, 50),
    # The original service's request format sends "Yes"; the data set stores "Y".
    _cat("Over18", "Y", role="constant", Yes="Y"),
    _cat("OverTime", "No", "Yes"),
    _num("PercentSalaryHike", 0, 100),
    _ord("PerformanceRating", 1, 4, {1: "Low", 2: "Good", 3: "Excellent", 4: "Outstanding"}),
    _ord("RelationshipSatisfaction", 1, 4, _SATISFACTION),
    # Constant 80 in the data set; the original example request sends 65, so only a working
    # week's physical bounds are enforced.
    _num("StandardHours", 1, 168, role="constant"),
    _ord("StockOptionLevel", 0, 3),
    _num("TotalWorkingYears", 0, _YEARS),
    _num("TrainingTimesLastYear", 0, 52),
    _ord("WorkLifeBalance", 1, 4, {1: "Bad", 2: "Good", 3: "Better", 4: "Best"}),
    _num("YearsAtCompany", 0, _YEARS),
    _num("YearsInCurrentRole", 0, _YEARS),
    _num("YearsSinceLastPromotion", 0, _YEARS),
    _num("YearsWithCurrManager", 0, _YEARS),
)

FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

LABEL = "Attrition"
POSITIVE_LABEL = "Yes"
NEGATIVE_LABEL = "No"
#: Negative first, so a 0/1 prediction indexes its label (``model.labels.label_index``).
LABEL_VALUES = (NEGATIVE_LABEL, POSITIVE_LABEL)
ID_COLUMN = "EmployeeNumber"

#: The 34 fields a prediction request carries (the data set's columns minus the label).
INPUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in FEATURES)
#: The data set's 35 columns in their original order (label second, as IBM ships it).
DATASET_COLUMNS: tuple[str, ...] = (INPUT_COLUMNS[0], LABEL, *INPUT_COLUMNS[1:])
#: What the model sees: identifier and constant columns carry no signal and are excluded.
MODEL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.role == "model")
NUMERIC_MODEL_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.role == "model" and f.is_integer
)
CATEGORICAL_MODEL_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.role == "model" and f.kind == "categorical"
)
#: Attributes the evaluation report slices by (HR data: disparities must be visible).
SENSITIVE_ATTRIBUTES: tuple[str, ...] = ("Gender", "AgeBand", "MaritalStatus")
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-29", 18, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50+", 50, 200),
)


def age_band(age: int) -> str:
    for name, lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return name
    raise ValueError(f"age {age} is outside every age band")
