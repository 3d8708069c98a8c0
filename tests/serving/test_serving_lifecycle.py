"""Under load: graceful shutdown loses nothing; a model swap fails no request.

Graceful shutdown runs the production command (``uvicorn --factory ...``) as a subprocess and
sends it SIGTERM mid-load. Hot swap is shown twice: flipping a model-directory symlink, and
moving a registry alias in a real MLflow store trained by the real ``train`` job.
"""

from __future__ import annotations

import os
import signal
import time

import mlflow
import pytest
from serving_support import (
    MODEL_NAME,
    TEST_PSEUDONYM_KEY,
    LoadGenerator,
    inputs,
    pipeline_settings,
    serve_in_subprocess,
    serve_in_thread,
    serving_settings,
)

from attrition_mlops import registry
from attrition_mlops.data.inference_log import is_inference_line, parse_line
from attrition_mlops.runner.local import run_job
from attrition_mlops.serving.app import create_app
from attrition_mlops.serving.sources import DirectorySource, Preparation
from attrition_mlops.settings import PipelineSettings

pytestmark = pytest.mark.integration


def _export_lines(export_dir) -> list[str]:
    return [
        line
        for path in sorted(export_dir.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def test_graceful_shutdown_under_load_loses_nothing(tmp_path, model_dirs, snapshot):
    export = tmp_path / "export"
    env = {
        "ATTRITION_SERVING_MODEL_DIR": str(model_dirs["1"]),
        "ATTRITION_SERVING_LOG_EXPORT": "true",
        "ATTRITION_SERVING_LOG_EXPORT_DIR": str(export),
        "ATTRITION_SERVING_LOG_FLUSH_SECONDS": "30",  # only the shutdown flush can save us
        "ATTRITION_SERVING_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "ATTRITION_SERVING_POLL_SECONDS": "0",
        "ATTRITION_STATE_DIR": str(tmp_path / "state"),
        "ATTRITION_TARGET": "local",
    }
    batch = inputs(snapshot).head(40).to_dict(orient="records")
    with serve_in_subprocess(env, tmp_path) as server:
        load = LoadGenerator(server.base_url, batch, threads=6).start()
        load.wait_for(lambda lg: len(lg.ok()) >= 60)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        load.join(timeout=90)
        returncode = server.process.wait(60)
    counts = load.summary()
    drained = sum(o.at > signalled for o in load.ok())
    print(f"graceful shutdown: outcomes {counts}; {drained} answered 200 after SIGTERM")
    stderr = server.stderr.read_text()
    assert returncode in (0, -signal.SIGTERM), stderr[-3000:]
    assert "Application shutdown complete" in stderr
    statuses = {o.status for thread in load.outcomes for o in thread if o.status is not None}
    assert statuses == {200}, counts  # no 5xx, no 4xx: accepted requests all succeeded
    assert drained >= 1  # requests in flight at SIGTERM were finished, not dropped
    ok_ids = sorted(o.request_id for o in load.ok())
    exported = [parse_line(line) for line in _export_lines(export)]
    assert sorted(r.request_id for r in exported) == ok_ids  # one line per 200, no more
    assert all(r.n_records == 40 for r in exported)
    stdout = [line for line in server.stdout.read_text().splitlines() if is_inference_line(line)]
    assert sorted(parse_line(line).request_id for line in stdout) == ok_ids
    assert f"inference log closed: {len(ok_ids)} entries written" in stderr


def _assert_swapped_without_failures(load: LoadGenerator, old: str, new: str) -> None:
    counts = load.summary()
    assert set(counts) == {"200"}, counts
    for thread in load.outcomes:
        versions = [o.version for o in thread]
        # each client sees the old version, then only the new one: one atomic switch
        first_new = versions.index(new) if new in versions else len(versions)
        assert set(versions[:first_new]) <= {old} and set(versions[first_new:]) <= {new}
    assert {o.version for o in load.ok()} == {old, new}


def test_hot_swap_of_a_model_directory_under_load(tmp_path, model_dirs, snapshot):
    current = tmp_path / "current"
    current.symlink_to(model_dirs["1"], target_is_directory=True)
    source = DirectorySource(current, default_name=MODEL_NAME, prep=Preparation())
    settings = serving_settings(tmp_path, poll_seconds=0.1)
    app = create_app(settings, source, pipeline=pipeline_settings(tmp_path))
    batch = inputs(snapshot).head(10).to_dict(orient="records")
    with serve_in_thread(app) as served:
        load = LoadGenerator(served.base_url, batch).start()
        load.wait_for(lambda lg: len(lg.ok()) >= 30)
        flipped = tmp_path / "current.new"
        flipped.symlink_to(model_dirs["2"], target_is_directory=True)
        os.replace(flipped, current)  # atomic, as a deploy script would do it
        load.wait_for(lambda lg: sum(o.version == "2" for o in lg.ok()) >= 30)
        load.stop()
        with served.client() as http:
            assert http.get("/model").json()["version"] == "2"
            assert "attrition_model_swaps_total 2.0" in http.get("/metrics").text
    _assert_swapped_without_failures(load, "1", "2")


def test_registry_alias_source_follows_the_alias_under_load(
    state_dir, monkeypatch, tmp_path, snapshot, restore_mlflow_uris
):
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "2")
    # the serving test needs a registered model, not a search: the fastest family only
    monkeypatch.setenv("ATTRITION_TRAIN_FAMILIES", '["logistic_regression"]')
    trained = run_job("train", ["--run-key", "serving-a"], echo=False)
    pipeline = PipelineSettings(state_dir=state_dir)
    mlflow.set_tracking_uri(pipeline.resolved_tracking_uri)
    mlflow.set_registry_uri(pipeline.resolved_tracking_uri)
    registry.move_alias(MODEL_NAME, registry.CHAMPION, "1", expected=None, actor="test", reason="t")

    # nothing holds "production" yet, so the server starts on the champion
    app = create_app(serving_settings(tmp_path, poll_seconds=0.2), pipeline=pipeline)
    batch = inputs(snapshot).head(10).to_dict(orient="records")
    with serve_in_thread(app) as served, served.client() as http:
        served.wait_ready()  # the registry is read in the background, after start-up
        info = http.get("/model").json()
        assert (info["version"], info["alias"]) == ("1", "champion")
        assert info["holdout_auc"] == pytest.approx(trained["holdout_auc"], abs=1e-6)
        assert info["run_id"] == trained["run_id"] and info["trained_at"]
        assert info["source"] == f"models:/{MODEL_NAME}/1" and info["fast_path"]

        v1 = registry.get_version(MODEL_NAME, "1")
        v2, _ = registry.register_version(
            v1.source, MODEL_NAME, run_key="serving-b", tags=dict(v1.tags)
        )
        load = LoadGenerator(served.base_url, batch).start()
        load.wait_for(lambda lg: len(lg.ok()) >= 30)
        registry.move_alias(
            MODEL_NAME,
            registry.PRODUCTION,
            str(v2.version),
            expected=None,
            actor="test",
            reason="deploy",
        )
        load.wait_for(lambda lg: sum(o.version == "2" for o in lg.ok()) >= 30)
        load.stop()
        info = http.get("/model").json()
        assert (info["version"], info["alias"]) == ("2", "production")
    _assert_swapped_without_failures(load, "1", "2")
