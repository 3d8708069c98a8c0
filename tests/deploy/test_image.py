"""The serving image, tested without an engine: the Dockerfile (hadolint + its contract) and the
build context ``attrition_mlops.deploy.image.build_context`` assembles from a really trained
model."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from standins import AZ_CALLS_ENV, AZ_FAIL_ENV, az_calls, install_az
from support import REPO

from attrition_mlops import registry
from attrition_mlops.deploy import image
from attrition_mlops.runner.local import run_job

DOCKERFILE = REPO / "serving" / "Dockerfile"
NAME = "employee_attrition"
TAG = re.compile(r"^v(\d+)-([0-9a-f]{12})$")
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)


def venv_tool(name: str) -> str:
    """A binary from this environment's bin dir first (uv sync installs them there), then PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(f"{name} is not installed: run `uv sync` (dev dependencies)")
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; comments dropped, line continuations joined."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current.strip())
        current = ""
    return [(op.upper(), rest.strip()) for op, _, rest in (s.partition(" ") for s in logical)]


def stages(text: str) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for op, args in instructions(text):
        if op == "FROM":
            out.append([])
        if out:
            out[-1].append((op, args))
    return out


# --- Dockerfile -----------------------------------------------------------------------------------


@pytest.mark.integration  # starts a subprocess
def test_hadolint_passes_the_dockerfile():
    proc = subprocess.run(
        [venv_tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.integration  # starts a subprocess
def test_hadolint_fails_a_careless_dockerfile(tmp_path):
    # The lint above means something only if this environment's hadolint does flag problems.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install uv\nCMD uvicorn app:app\n")
    proc = subprocess.run([venv_tool("hadolint"), "--no-color", str(bad)], capture_output=True)
    out = proc.stdout.decode()
    assert proc.returncode != 0
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= set(re.findall(r"DL\d{4}", out)), out


def test_dockerfile_contract():
    text = DOCKERFILE.read_text()
    builder, runtime = stages(text)
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")

    build_runs = " ".join(args for op, args in builder if op == "RUN")
    for flag in ("--frozen", "--no-default-groups", "--no-emit-project", "--require-hashes"):
        assert flag in build_runs

    final = dict(runtime)  # last value per instruction
    assert final["USER"] == "10001:10001"
    assert final["EXPOSE"] == "8000"
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert "/health/live" in final["HEALTHCHECK"] and '"python"' in final["HEALTHCHECK"]
    assert json.loads(final["CMD"]) == ["python", "-m", "attrition_mlops.serving.server"]
    env = " ".join(args for op, args in runtime if op == "ENV")
    assert "ATTRITION_SERVING_MODEL_DIR=/opt/model" in env
    # The runtime stage takes the venv and the model, nothing else (no sources, no lock, no uv).
    copies = [args for op, args in runtime if op == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv", "model/ /opt/model/"]
    # No secrets baked in: no ENV/ARG whose name looks like one.
    for op, args in instructions(text):
        if op in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", " " + args)
            assert not [n for n in names if SECRET_NAME.search(n)], args


# --- digest and docker helpers (no MLflow) --------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def test_content_digest_is_stable_and_sensitive(tmp_path):
    card = {"name": "m", "version": "1", "aliases": ["challenger"], "run_id": "r"}
    files = {
        "uv.lock": b"lock",
        "dist/p.whl": b"wheel",
        "model/MLmodel": b"m",
        "model/model_card.json": json.dumps(card).encode(),
    }

    def digest(changes: dict[str, bytes], name: str) -> str:
        return image.content_digest(image.file_digests(_tree(tmp_path / name, files | changes)))

    reference = digest({}, "a")
    assert digest({}, "b") == reference
    # build.json records the result; it is not an input.
    assert digest({"build.json": b"{}"}, "c") == reference
    # Promotion moves aliases without changing the model: same image, same tag.
    moved = json.dumps(card | {"aliases": ["champion", "production"]}).encode()
    assert digest({"model/model_card.json": moved}, "d") == reference
    assert digest({"model/MLmodel": b"M"}, "e") != reference
    assert digest({"uv.lock": b"lock2"}, "f") != reference
    assert digest({"model/extra": b""}, "g") != reference
    other_run = json.dumps(card | {"run_id": "s"}).encode()
    assert digest({"model/model_card.json": other_run}, "h") != reference


def _context(tmp_path: Path) -> image.BuildContext:
    return image.BuildContext(
        tmp_path, "attrition-serving:v3-0123456789ab", "v3-0123456789ab", "3", {}
    )


def _fake_docker(tmp_path: Path, monkeypatch, info_exit: int) -> Path:
    bin_dir, calls = tmp_path / "bin", tmp_path / "docker-calls"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> "{calls}"\n[ "$1" = info ] && exit {info_exit}\nexit 0\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return calls


def test_docker_build_command_names_the_context_and_tag(tmp_path):
    cmd = image.docker_build_command(_context(tmp_path))
    assert cmd[:2] == ["docker", "build"] and cmd[-1] == str(tmp_path)
    assert cmd[cmd.index("--tag") + 1] == "attrition-serving:v3-0123456789ab"
    assert "MODEL_VERSION=3" in cmd and "IMAGE_TAG=v3-0123456789ab" in cmd


@pytest.mark.integration  # starts a subprocess
def test_maybe_docker_build_without_engine_only_logs(tmp_path, monkeypatch, caplog):
    calls = _fake_docker(tmp_path, monkeypatch, info_exit=1)
    with caplog.at_level(logging.INFO, logger="attrition_mlops.deploy.image"):
        assert image.maybe_docker_build(_context(tmp_path)) is False
    assert calls.read_text().split("\n")[0] == "info" and "build" not in calls.read_text()
    assert "without building" in caplog.text and str(tmp_path) in caplog.text


@pytest.mark.integration  # starts a subprocess
def test_maybe_docker_build_with_engine_runs_the_command(tmp_path, monkeypatch):
    calls = _fake_docker(tmp_path, monkeypatch, info_exit=0)
    ctx = _context(tmp_path)
    assert image.maybe_docker_build(ctx) is True
    assert calls.read_text().splitlines() == ["info", " ".join(image.docker_build_command(ctx)[1:])]


# --- az acr build (the azure target), against the az stand-in first on PATH --------------------

ACR_IMAGE = "attritionacr.azurecr.io/attrition-serving:v3-0123456789ab"


def _acr_context(tmp_path: Path) -> image.BuildContext:
    return image.BuildContext(tmp_path, ACR_IMAGE, "v3-0123456789ab", "3", {})


@pytest.fixture
def az(tmp_path, monkeypatch) -> Path:
    """The az stand-in first on PATH; returns the file its calls are recorded in."""
    install_az(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    calls = tmp_path / "az-calls.jsonl"
    monkeypatch.setenv(AZ_CALLS_ENV, str(calls))
    monkeypatch.delenv(AZ_FAIL_ENV, raising=False)
    return calls


def test_acr_build_command_matches_the_docker_build(tmp_path):
    ctx = _acr_context(tmp_path)
    assert image.acr_build_command(ctx, "attritionacr") == [
        "az",
        "acr",
        "build",
        "--registry",
        "attritionacr",
        "--image",
        "attrition-serving:v3-0123456789ab",  # ACR prefixes its login server
        "--platform",
        "linux/amd64",
        "--file",
        str(tmp_path / "Dockerfile"),
        "--build-arg",
        "IMAGE_TAG=v3-0123456789ab",
        "--build-arg",
        "MODEL_VERSION=3",
        str(tmp_path),
    ]
    # one platform, Dockerfile and set of build arguments, whichever builder runs
    docker, acr = image.docker_build_command(ctx), image.acr_build_command(ctx, "attritionacr")
    for flag in ("--platform", "--file"):
        assert docker[docker.index(flag) + 1] == acr[acr.index(flag) + 1]

    def build_args(cmd: list[str]) -> list[str]:
        return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--build-arg"]

    assert build_args(docker) == build_args(acr) != []


@pytest.mark.parametrize(
    "ref",
    [
        "attrition-serving:v3-0123456789ab",  # no registry host: AKS would look on Docker Hub
        "otheracr.azurecr.io/attrition-serving:v3-0123456789ab",  # pushed here, pulled there
        "attritionacr.example.com/attrition-serving:v3-0123456789ab",
    ],
)
def test_acr_build_refuses_an_image_outside_that_registry(tmp_path, az, ref):
    ctx = image.BuildContext(tmp_path, ref, "v3-0123456789ab", "3", {})
    with pytest.raises(image.ImageBuildError, match="ATTRITION_WORKFLOW_IMAGE_REPOSITORY to "):
        image.acr_build(ctx, "attritionacr")
    assert az_calls(az) == []


@pytest.mark.integration  # starts a subprocess
def test_acr_build_runs_az_and_passes_its_output_through(tmp_path, az, capfd):
    ctx = _acr_context(tmp_path)
    image.acr_build(ctx, "attritionacr")
    assert az_calls(az) == [image.acr_build_command(ctx, "attritionacr")[1:]]
    out, err = capfd.readouterr()
    assert "Step 1/20" in out and "Queued a build with ID: ca1" in err  # the task log shows both


@pytest.mark.integration  # starts a subprocess
def test_a_failing_acr_build_raises_with_azs_stderr(tmp_path, az, monkeypatch):
    monkeypatch.setenv(AZ_FAIL_ENV, "ERROR: The resource 'attritionacr' was not found")
    with pytest.raises(image.ImageBuildError) as failed:
        image.acr_build(_acr_context(tmp_path), "attritionacr")
    assert str(failed.value) == (
        "`az acr build --registry attritionacr --image attrition-serving:v3-0123456789ab "
        f"--platform linux/amd64 --file {tmp_path / 'Dockerfile'} --build-arg "
        f"IMAGE_TAG=v3-0123456789ab --build-arg MODEL_VERSION=3 {tmp_path}` exited 1:\n"
        "Queued a build with ID: ca1\n"
        "ERROR: The resource 'attritionacr' was not found"
    )
    assert len(az_calls(az)) == 1


def test_acr_build_without_az_on_path_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    no_az = "ATTRITION_WORKFLOW_ACR_NAME is 'attritionacr' but the Azure CLI"
    with pytest.raises(image.ImageBuildError, match=no_az):
        image.acr_build(_acr_context(tmp_path), "attritionacr")


def test_build_context_refuses_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="version"):
        image.build_context(NAME, "latest", tmp_path / "a")
    with pytest.raises(ValueError, match="tag"):
        image.build_context(NAME, "1", tmp_path / "b", registry_image="acr.io/x:latest")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(image.BuildContextError, match="refusing"):
        image.build_context(NAME, "1", tmp_path / "c")
    assert (tmp_path / "c" / "notes.txt").read_text() == "mine"


# --- the real thing: trained model -> build context -----------------------------------------------


def _dockerignore_excludes(patterns: list[str], relative: str) -> bool:
    """Docker's rule: last matching pattern wins; a pattern also matches a path's parents."""

    def regex(pattern: str) -> re.Pattern:
        body = re.escape(pattern.strip("/")).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        return re.compile(body.replace(r"\?", "[^/]") + "$")

    parts, excluded = relative.split("/"), False
    for raw in patterns:
        negate = raw.startswith("!")
        matcher = regex(raw[1:] if negate else raw)
        if any(matcher.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def _assert_copy_sources_present(ctx_dir: Path) -> None:
    ignore = ctx_dir / ".dockerignore"
    patterns = [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for op, args in instructions((ctx_dir / "Dockerfile").read_text()):
        if op != "COPY" or "--from=" in args:
            continue
        sources = [a for a in args.split() if not a.startswith("--")][:-1]
        for source in sources:
            matched = sorted(ctx_dir.glob(source.rstrip("/")))
            assert matched, f"COPY source {source} missing from the context"
            files = [p for m in matched for p in ([m] if m.is_file() else m.rglob("*"))]
            for path in (p for p in files if p.is_file()):
                relative = path.relative_to(ctx_dir).as_posix()
                assert not _dockerignore_excludes(patterns, relative), relative
    assert _dockerignore_excludes(patterns, "build.json")


def _snapshot_project(dest: Path) -> Path:
    # Others may edit the checkout while this test runs; building both contexts from one frozen
    # copy keeps "same inputs -> same tag" about the function, not about the weather.
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "src", dest / "src", ignore=ignore)
    for name in ("pyproject.toml", "uv.lock", "README.md", "serving/Dockerfile"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, dest / name)
    shutil.copyfile(REPO / "serving" / ".dockerignore", dest / "serving" / ".dockerignore")
    return dest


@pytest.mark.integration
def test_build_context_bakes_a_registered_model(state_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("ATTRITION_TRAIN_N_TRIALS", "2")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    project = _snapshot_project(tmp_path / "project")
    first = run_job("train", ["--run-key", "img-1"], echo=False)

    ctx = image.build_context(NAME, first["version"], tmp_path / "ctx-a", project_dir=project)
    assert TAG.match(ctx.tag).group(1) == "1" and ctx.image_ref == f"attrition-serving:{ctx.tag}"
    _check_layout(ctx, project)
    _check_card(ctx)
    _assert_copy_sources_present(ctx.path)
    _check_model_predicts(ctx.path / "model")

    again = image.build_context(NAME, "1", tmp_path / "ctx-b", project_dir=project)
    assert (again.tag, dict(again.digest_inputs)) == (ctx.tag, dict(ctx.digest_inputs))
    # A promotion changes the card's alias snapshot, not the image identity; rebuilding into an
    # earlier context directory replaces it.
    registry.move_alias(NAME, registry.CHAMPION, "1", expected=None, actor="test", reason="t")
    promoted = image.build_context(NAME, "1", ctx.path, project_dir=project)
    assert promoted.tag == ctx.tag
    card = json.loads((promoted.path / "model" / "model_card.json").read_text())
    assert card["aliases"] == ["challenger", "champion"]

    # The champion's snapshot again: --force, or training is skipped as unchanged.
    second = run_job("train", ["--run-key", "img-2", "--force"], echo=False)
    assert second["version"] == "2"
    other = image.build_context(NAME, "2", tmp_path / "ctx-c", project_dir=project)
    assert TAG.match(other.tag).group(1) == "2"
    assert TAG.match(other.tag).group(2) != TAG.match(ctx.tag).group(2)
    assert other.digest_inputs["uv.lock"] == ctx.digest_inputs["uv.lock"]
    assert other.digest_inputs["model/MLmodel"] != ctx.digest_inputs["model/MLmodel"]

    _version_without_provenance_is_refused(tmp_path)
    if not image.docker_engine_available():  # as on this project's CI machine
        assert image.maybe_docker_build(ctx) is False


def _check_layout(ctx: image.BuildContext, project: Path) -> None:
    root = ctx.path
    assert {p.name for p in root.iterdir()} == {
        "Dockerfile",
        ".dockerignore",
        "pyproject.toml",
        "uv.lock",
        "dist",
        "model",
        "build.json",
    }
    assert (root / "model" / "MLmodel").is_file()
    assert [p.name for p in (root / "dist").iterdir()] == ["attrition_mlops-0.1.0-py3-none-any.whl"]
    for source, target in image.PROJECT_FILES.items():
        assert (root / target).read_bytes() == (project / source).read_bytes()
    record = json.loads((root / "build.json").read_text())
    assert {k: record[k] for k in ctx.to_dict()} == ctx.to_dict()
    assert record["docker_build_command"] == image.docker_build_command(ctx)
    assert set(ctx.digest_inputs) == {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    } - {"build.json"}


def _check_card(ctx: image.BuildContext) -> None:
    card = json.loads((ctx.path / "model" / "model_card.json").read_text())
    version = registry.get_version(NAME, ctx.model_version)
    assert card["name"] == NAME and card["version"] == ctx.model_version
    assert card["aliases"] == ["challenger"]
    assert card["run_id"] == version.run_id
    for field in ("trained_at", "data_sha256", "git_commit"):
        assert card[field] == version.tags[field]
    assert card["holdout_auc"] == pytest.approx(float(version.tags["holdout_auc"]))


def _check_model_predicts(model_dir: Path) -> None:
    model = mlflow.pyfunc.load_model(str(model_dir))
    example = json.loads((model_dir / "input_example.json").read_text())
    out = model.predict(pd.DataFrame(example["data"], columns=example["columns"]))
    assert list(out.columns) == ["probability", "label", "is_outlier", "outlier_score"]
    assert out["probability"].between(0, 1).all() and set(out["label"]) <= {"Yes", "No"}


def _version_without_provenance_is_refused(tmp_path: Path) -> None:
    source = registry.get_version(NAME, "1").source
    bare = MlflowClient().create_model_version(NAME, source)  # no training tags
    with pytest.raises(image.BuildContextError, match="provenance"):
        image.build_context(NAME, bare.version, tmp_path / "ctx-bare")
    assert not (tmp_path / "ctx-bare").exists()
