"""The example request: one real-shaped employee record, as in the original proof of concept.

Used by the API's OpenAPI document, its start-up self-check, the smoke test and the benchmarks;
it lives with the data contract so deployment and serving both take it from here.
"""

from __future__ import annotations

from typing import Any

#: The request body of the original proof of concept (docs/serving.md), one record.
EXAMPLE_RECORD: dict[str, Any] = {
    "BusinessTravel": "Travel_Rarely",
    "Department": "Research & Development",
    "EducationField": "Medical",
    "Gender": "Male",
    "JobRole": "Manager",
    "MaritalStatus": "Married",
    "Over18": "Yes",
    "OverTime": "No",
    "Age": 36,
    "DailyRate": 989,
    "DistanceFromHome": 8,
    "Education": 1,
    "EmployeeCount": 1,
    "EmployeeNumber": 253,
    "EnvironmentSatisfaction": 4,
    "HourlyRate": 46,
    "JobInvolvement": 3,
    "JobLevel": 5,
    "JobSatisfaction": 3,
    "MonthlyIncome": 19033,
    "MonthlyRate": 6499,
    "NumCompaniesWorked": 1,
    "PercentSalaryHike": 14,
    "PerformanceRating": 3,
    "RelationshipSatisfaction": 2,
    "StandardHours": 65,
    "StockOptionLevel": 1,
    "TotalWorkingYears": 14,
    "TrainingTimesLastYear": 3,
    "WorkLifeBalance": 2,
    "YearsAtCompany": 3,
    "YearsInCurrentRole": 3,
    "YearsSinceLastPromotion": 3,
    "YearsWithCurrManager": 1,
}
EXAMPLE_REQUEST: list[dict[str, Any]] = [EXAMPLE_RECORD]
