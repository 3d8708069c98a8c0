"""The frozen holdout: stratified once, reused on every later snapshot, tamper-evident."""

from __future__ import annotations

import pytest

from attrition_mlops.data import contract
from attrition_mlops.data.split import HoldoutError, load_holdout, split_snapshot


def _split(frame, directory, seed=42):
    return split_snapshot(frame, directory, fraction=0.2, seed=seed, source_sha256="abc")


def test_first_split_is_stratified_and_frozen(snapshot, tmp_path):
    train, holdout, meta = _split(snapshot.frame, tmp_path)
    assert (len(train), len(holdout)) == (1176, 294)
    assert meta.n_positive == 47 == (holdout[contract.LABEL] == "Yes").sum()
    assert not set(train[contract.ID_COLUMN]) & set(holdout[contract.ID_COLUMN])
    loaded, loaded_meta = load_holdout(tmp_path)
    assert loaded_meta == meta and loaded.equals(holdout)


def test_later_snapshots_reuse_the_holdout_and_never_train_on_it(snapshot, tmp_path):
    _, holdout, meta = _split(snapshot.frame, tmp_path)
    newer = snapshot.frame.sample(frac=0.9, random_state=1)  # a different snapshot and seed
    train2, holdout2, meta2 = _split(newer, tmp_path, seed=7)
    assert meta2.sha256 == meta.sha256 and holdout2.equals(holdout)
    assert not set(train2[contract.ID_COLUMN]) & set(holdout[contract.ID_COLUMN])
    assert len(train2) == (~newer[contract.ID_COLUMN].isin(holdout[contract.ID_COLUMN])).sum()


def test_a_modified_holdout_fails_loudly(snapshot, tmp_path):
    _split(snapshot.frame, tmp_path)
    path = tmp_path / "holdout.csv"
    lines = path.read_text().splitlines()
    lines[1] = (
        lines[1].replace(",Yes,", ",No,", 1)
        if ",Yes," in lines[1]
        else lines[1].replace(",No,", ",Yes,", 1)
    )
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(HoldoutError, match="was modified"):
        load_holdout(tmp_path)


def test_no_holdout_yet_is_none(tmp_path):
    assert load_holdout(tmp_path) is None
