"""The reference profile stored with each model for the drift check."""

from __future__ import annotations

import json

from attrition_mlops.data import contract
from attrition_mlops.model.profile import build_reference_profile


def test_profile_covers_exactly_the_model_features(snapshot):
    profile = build_reference_profile(snapshot.frame, source_sha256=snapshot.sha256)
    json.dumps(profile)  # JSON-able, as stored next to the model
    assert set(profile["features"]) == set(contract.MODEL_FEATURES)
    assert profile["n_rows"] == 1470
    for name, entry in profile["features"].items():
        feature = contract.FEATURES_BY_NAME[name]
        assert entry["kind"] == feature.kind
        if feature.kind == "numeric":
            assert len(entry["values"]) == 1470 and entry["values"] == sorted(entry["values"])
            assert entry["min"] == snapshot.frame[name].min()
        else:
            assert sum(entry["counts"].values()) == 1470
    assert profile["features"]["Education"]["counts"] == {
        "1": 170,
        "2": 282,
        "3": 572,
        "4": 398,
        "5": 48,
    }


def test_large_references_are_sampled_reproducibly(snapshot):
    a = build_reference_profile(snapshot.frame, source_sha256="x", max_values=100, seed=3)
    b = build_reference_profile(snapshot.frame, source_sha256="x", max_values=100, seed=3)
    age = a["features"]["Age"]
    assert age["sampled"] and len(age["values"]) == 100
    assert age["values"] == b["features"]["Age"]["values"]
    assert age["mean"] == snapshot.frame["Age"].mean()  # summary stats use every row
