"""Model sources and the runtime that follows them (no HTTP)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import joblib
import pytest
from serving_support import MODEL_NAME, pipeline_settings, serving_settings

from attrition_mlops.model.predictor import PREDICTOR_FILE
from attrition_mlops.serving.runtime import ModelRuntime
from attrition_mlops.serving.sources import (
    CARD_FILE,
    DirectorySource,
    NoModelAvailableError,
    RegistrySource,
    source_from_settings,
)


def _source(tmp_path, **overrides):
    return source_from_settings(
        serving_settings(tmp_path, **overrides), pipeline_settings(tmp_path)
    )


def test_source_selection(tmp_path):
    assert isinstance(_source(tmp_path, model_dir=tmp_path), DirectorySource)
    default = _source(tmp_path)
    assert isinstance(default, RegistrySource)
    assert default.aliases == ("production", "champion") and default.name == MODEL_NAME
    pinned = _source(tmp_path, model_uri="models:/other/7")
    assert (pinned.name, pinned.version, pinned.aliases) == ("other", "7", ())
    staged = _source(tmp_path, model_uri="models:/employee_attrition@staging")
    assert staged.aliases == ("staging",) and staged.version is None
    assert _source(tmp_path, fallback_alias=None).aliases == ("production",)
    with pytest.raises(ValueError, match="MODEL_DIR"):
        _source(tmp_path, model_uri="runs:/abc/model")


def test_card_inside_or_next_to_the_model_dir_or_missing(tmp_path, model_dirs, caplog):
    baked = tmp_path / "image" / "model"
    shutil.copytree(model_dirs["1"], baked)
    (baked / CARD_FILE).unlink()
    (baked.parent / CARD_FILE).write_text(json.dumps({"name": MODEL_NAME, "version": 12}))
    source = DirectorySource(baked, default_name=MODEL_NAME)
    assert source.current_version() == "12" and source.load().card.version == "12"
    (baked.parent / CARD_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        assert source.load().card.version == "unknown"
    assert "no model_card.json" in caplog.text


def test_plain_joblib_directory(tmp_path, predictor):
    joblib.dump(predictor, tmp_path / PREDICTOR_FILE)
    (tmp_path / CARD_FILE).write_text(json.dumps({"name": MODEL_NAME, "version": "5"}))
    model = DirectorySource(tmp_path, default_name=MODEL_NAME).load()
    assert model.card.version == "5" and model.fast_path


def test_a_broken_new_version_never_replaces_a_working_one(tmp_path, model_dirs, caplog):
    current = tmp_path / "current"
    current.symlink_to(model_dirs["1"])
    runtime = ModelRuntime(DirectorySource(current, default_name=MODEL_NAME), poll_seconds=0.05)
    runtime.load_initial(fail_fast=True)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CARD_FILE).write_text(json.dumps({"name": MODEL_NAME, "version": "3"}))
    flipped = tmp_path / "flip"
    flipped.symlink_to(broken)
    os.replace(flipped, current)
    with pytest.raises(FileNotFoundError):
        runtime.refresh()
    assert runtime.model.card.version == "1"
    with caplog.at_level(logging.ERROR):
        runtime.start_following()
        deadline = time.monotonic() + 10
        while runtime.last_error is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # several more polls: the same failure is logged once
        runtime.stop()
    assert runtime.model.card.version == "1" and "FileNotFoundError" in runtime.last_error
    assert caplog.text.count("model refresh from") == 1


def test_fail_fast_only_when_asked(tmp_path):
    missing = DirectorySource(tmp_path / "nope", default_name=MODEL_NAME)
    with pytest.raises(FileNotFoundError):
        ModelRuntime(missing, poll_seconds=0).load_initial(fail_fast=True)
    runtime = ModelRuntime(missing, poll_seconds=0)
    runtime.load_initial(fail_fast=False)  # loads in the background: logs, does not raise
    runtime.stop()


def test_empty_registry_is_not_an_error_until_fail_fast(tmp_path, restore_mlflow_uris):
    source = _source(tmp_path)
    runtime = ModelRuntime(source, poll_seconds=0)
    runtime.load_initial(fail_fast=False)
    runtime.stop()
    assert runtime.model is None
    with pytest.raises(NoModelAvailableError):
        runtime.load_initial(fail_fast=True)
