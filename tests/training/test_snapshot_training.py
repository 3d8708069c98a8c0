"""Training on labelled snapshots, against a real MLflow store: the run records its snapshot
(``mlflow.data`` input, as_of and sha256 tags), and a snapshot the champion was trained on is
skipped with a reason instead of retrained."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from mlflow.tracking import MlflowClient

from attrition_mlops import registry
from attrition_mlops.data.snapshots import add_snapshot, select_snapshot
from attrition_mlops.settings import get_training_settings
from attrition_mlops.training.lineage import DIGEST_CHARS, TrainingSkipped
from attrition_mlops.training.train import TrainResult, train_model

NAME = "employee_attrition"
LATER = date(2026, 11, 30)


@pytest.fixture
def fast(mlflow_store, monkeypatch):
    """The real training code with the smallest search: two trials of one family, 3 folds."""
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "2")
    monkeypatch.setenv("ATTRITION_TRAIN_CV_FOLDS", "3")
    monkeypatch.setenv("ATTRITION_TRAIN_FAMILIES", '["logistic_regression"]')
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    get_training_settings.cache_clear()
    yield mlflow_store
    get_training_settings.cache_clear()


def _train(settings, chosen, key: str, **kwargs) -> TrainResult | TrainingSkipped:
    return train_model(
        chosen.snapshot,
        run_key=key,
        settings=settings,
        cfg=get_training_settings(),
        manifest=chosen.manifest,
        **kwargs,
    )


def _versions() -> list[str]:
    return sorted(str(v.version) for v in MlflowClient().search_model_versions(f"name = '{NAME}'"))


def test_runs_record_their_snapshot_and_unchanged_data_is_not_retrained(fast, caplog):
    settings = fast
    bundled = select_snapshot(settings.snapshot_dir)  # first use: the bundled snapshot
    first = _train(settings, bundled, "run-1")
    assert isinstance(first, TrainResult) and first.version == "1" and not first.skipped
    assert first.snapshot_as_of == "2017-03-31" and first.data_sha256 == bundled.manifest.sha256
    _check_lineage(first.run_id, bundled)
    tags = registry.get_version(NAME, "1").tags
    assert tags["snapshot_as_of"] == "2017-03-31"
    assert tags["snapshot_sha256"] == tags["data_sha256"] == bundled.manifest.sha256
    assert tags["snapshot_source"] == "IBM HR Attrition (bundled)"

    # Not the champion yet: nothing to compare with, so the same data still trains (cold start).
    registry.move_alias(NAME, registry.CHAMPION, "1", expected=None, actor="test", reason="t")
    caplog.set_level(logging.INFO, logger="attrition_mlops.training.lineage")
    skipped = _train(settings, select_snapshot(settings.snapshot_dir), "run-2")
    assert isinstance(skipped, TrainingSkipped) and skipped.to_dict()["skipped"] is True
    assert skipped.champion_version == "1" and skipped.snapshot_as_of == "2017-03-31"
    assert skipped.reason.startswith("unchanged snapshot: as_of=2017-03-31 (sha256 ")
    assert "champion v1" in skipped.reason
    assert any(r.message.startswith("training skipped: unchanged snapshot") for r in caplog.records)
    assert _versions() == ["1"]  # no run registered, the challenger alias untouched
    assert registry.get_alias_version(NAME, registry.CHALLENGER) == "1"

    # A new labelled snapshot is new data: it trains, whatever the latest-or-named selection.
    rows = bundled.snapshot.frame.iloc[:1200]
    add_snapshot(rows, LATER, source="HR export 2026-11", root=settings.snapshot_dir)
    latest = select_snapshot(settings.snapshot_dir)
    assert latest.manifest.as_of == "2026-11-30"
    second = _train(settings, latest, "run-3")
    assert isinstance(second, TrainResult) and second.version == "2"
    assert second.snapshot_as_of == "2026-11-30" and second.data_sha256 == latest.manifest.sha256
    _check_lineage(second.run_id, latest)

    # Naming the old snapshot again is the champion's data: skipped.
    named = select_snapshot(settings.snapshot_dir, date(2017, 3, 31))
    assert isinstance(_train(settings, named, "run-4"), TrainingSkipped)
    assert _versions() == ["1", "2"]
    # Only the champion's data counts as unchanged: v2 is a challenger, not the champion.
    again = _train(settings, latest, "run-5")
    assert isinstance(again, TrainResult) and again.version == "3"


def _check_lineage(run_id: str, chosen) -> None:
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["snapshot_as_of"] == chosen.manifest.as_of
    assert run.data.tags["snapshot_sha256"] == chosen.manifest.sha256
    [logged] = run.inputs.dataset_inputs
    dataset = logged.dataset
    assert dataset.name == f"labelled_snapshot as_of={chosen.manifest.as_of}"
    assert dataset.digest == chosen.manifest.sha256[:DIGEST_CHARS]
    assert str(chosen.snapshot.path) in dataset.source
    assert chosen.snapshot.path.name == "data.parquet"
    input_tags = {t.key: t.value for t in logged.tags}
    assert input_tags["mlflow.data.context"] == "training"
    assert input_tags["sha256"] == chosen.manifest.sha256
    assert input_tags["as_of"] == chosen.manifest.as_of


def test_force_retrains_on_the_champions_snapshot(fast):
    settings = fast
    bundled = select_snapshot(settings.snapshot_dir)
    first = _train(settings, bundled, "run-1")
    registry.move_alias(NAME, registry.CHAMPION, "1", expected=None, actor="t", reason="t")
    forced = _train(settings, bundled, "run-2", force=True)
    assert isinstance(forced, TrainResult) and forced.version == "2"
    assert forced.data_sha256 == first.data_sha256
