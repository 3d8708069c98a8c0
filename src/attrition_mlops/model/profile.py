"""The training reference profile the drift check compares live traffic against.

Stored with every registered model version (``reference_profile.json``), so drift is always
measured against the data that trained the model that served the traffic. Numeric features keep
their reference values (all of them up to ``max_values``, else a seeded uniform sample), which is
what a two-sample KS test needs; ordinal and categorical features keep level counts for χ².
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops.data import contract

PROFILE_SCHEMA_VERSION = 1
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def _numeric_profile(values: np.ndarray, max_values: int, rng: np.random.Generator) -> dict:
    sample = values if len(values) <= max_values else rng.choice(values, max_values, replace=False)
    quantiles = np.quantile(values, QUANTILES).tolist()
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": dict(zip(map(str, QUANTILES), quantiles, strict=True)),
        "values": np.sort(sample).tolist(),
        "sampled": bool(len(values) > max_values),
    }


def build_reference_profile(
    frame: pd.DataFrame, *, source_sha256: str, max_values: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """A JSON-able profile of the model features of ``frame`` (contract-validated rows)."""
    if frame.empty:
        raise ValueError("cannot profile an empty frame")
    rng = np.random.default_rng(seed)
    features: dict[str, Any] = {}
    for feature in contract.FEATURES:
        if feature.role != "model":
            continue  # identifiers and constants are excluded from drift by design
        column = frame[feature.name]
        entry: dict[str, Any] = {"kind": feature.kind}
        if feature.kind == "numeric":
            entry |= _numeric_profile(column.to_numpy(dtype=float), max_values, rng)
        else:
            levels = (
                [str(v) for v in range(feature.minimum, feature.maximum + 1)]
                if feature.kind == "ordinal"
                else list(feature.categories)
            )
            counts = column.astype(str).value_counts()
            entry["counts"] = {level: int(counts.get(level, 0)) for level in levels}
        features[feature.name] = entry
    return {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "contract_version": contract.CONTRACT_VERSION,
        "n_rows": len(frame),
        "source_sha256": source_sha256,
        "features": features,
    }
