"""The serving image's build context: one registered model version baked into a FastAPI image.

The deployment DAG calls :func:`build_context`. It assembles a directory that ``docker build``
(or ``az acr build``) can turn into the image with no other input::

    Dockerfile  .dockerignore  pyproject.toml  uv.lock      (from the project checkout)
    dist/attrition_mlops-<ver>-py3-none-any.whl             (built from the checkout)
    model/  MLmodel, artifacts/, ... + model_card.json      (the registered version)
    build.json                                              (this build's record; not sent)

The tag is content-addressed, ``v<version>-<12 hex>``: the same inputs always give the same tag,
any changed byte a new one (:mod:`attrition_mlops.deploy.context_digest` says what is hashed).

Only the ``local`` target lacks an engine; there :func:`maybe_docker_build` reports that the
context was assembled without building and returns False. On ``azure`` :func:`acr_build` has
Azure Container Registry build and push it (``az acr build``) with the same platform, Dockerfile
and build arguments as :func:`docker_build_command`; a failed build is an :class:`ImageBuildError`
carrying the builder's own error output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import MappingProxyType
from typing import Any

from attrition_mlops import registry
from attrition_mlops.deploy.context_digest import (
    BUILD_RECORD,
    CARD_FILE,
    MODEL_DIR,
    content_digest,
    file_digests,
    image_tag,
)
from attrition_mlops.registry.tracking import configure_mlflow
from attrition_mlops.settings import PipelineSettings, get_settings

log = logging.getLogger(__name__)

DIST_DIR = "dist"
# AKS node pools are amd64; say so, so a build on an arm64 laptop does not ship the wrong arch.
PLATFORM = "linux/amd64"
PROJECT_DIR_ENV = "ATTRITION_PROJECT_DIR"
# Project checkout path -> path in the build context.
PROJECT_FILES = {
    "serving/Dockerfile": "Dockerfile",
    "serving/.dockerignore": ".dockerignore",
    "pyproject.toml": "pyproject.toml",
    "uv.lock": "uv.lock",
}
# Written by training on every registered version; an image without its provenance is refused.
REQUIRED_TAGS = ("trained_at", "holdout_auc", "data_sha256", "git_commit")


class BuildContextError(RuntimeError):
    """The build context cannot be assembled (missing provenance, no uv, a failed wheel build)."""


class ImageBuildError(RuntimeError):
    """The image could not be built or pushed (the builder's error output is in the message)."""


@dataclass(frozen=True)
class BuildContext:
    path: Path
    image_ref: str
    tag: str
    model_version: str
    # Context-relative POSIX path -> sha256 of the bytes that went into the tag.
    digest_inputs: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "image_ref": self.image_ref,
            "tag": self.tag,
            "model_version": self.model_version,
            "digest_inputs": dict(self.digest_inputs),
        }


def build_context(
    model_name: str,
    version: str,
    out_dir: Path,
    *,
    registry_image: str = "attrition-serving",
    project_dir: Path | None = None,
    settings: PipelineSettings | None = None,
) -> BuildContext:
    """Assemble ``out_dir`` so that ``docker build out_dir`` builds the serving image.

    ``out_dir`` is replaced if it is empty or an earlier context (has ``build.json``); anything
    else is refused. Assembly happens in a sibling temporary folder, so a failure never leaves a
    half-built context behind.
    """
    version = _check_inputs(str(version), registry_image)
    project = find_project_dir(project_dir)
    out = Path(out_dir).resolve()
    _check_replaceable(out)
    configure_mlflow(settings or get_settings())
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        download_model(model_name, version, work / MODEL_DIR)
        build_wheel(project, work / DIST_DIR)
        for source, target in PROJECT_FILES.items():
            shutil.copyfile(project / source, work / target)
        _normalise_permissions(work)
        inputs = file_digests(work)
        tag = image_tag(version, inputs)
        ctx = BuildContext(out, f"{registry_image}:{tag}", tag, version, MappingProxyType(inputs))
        _write_build_record(work, ctx, model_name)
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info(
        "assembled build context %s for %s (model %s/%s)", out, ctx.image_ref, model_name, version
    )
    return ctx


def _check_inputs(version: str, registry_image: str) -> str:
    if not version.isdigit():
        raise ValueError(f"model version must be a registry version number, got {version!r}")
    if ":" in registry_image.rsplit("/", 1)[-1] or "@" in registry_image:
        raise ValueError(f"registry_image must not carry a tag or digest: {registry_image!r}")
    return version


def _check_replaceable(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / BUILD_RECORD).is_file():
        raise BuildContextError(
            f"{out} is not empty and is not an earlier build context (no {BUILD_RECORD}); "
            "refusing to replace it"
        )


def find_project_dir(explicit: Path | None = None) -> Path:
    """The project checkout to build the wheel from: ``explicit``, $ATTRITION_PROJECT_DIR, or the
    checkout this module was imported from (an editable install)."""
    if explicit is not None:
        candidates = [Path(explicit)]
    else:
        env = os.environ.get(PROJECT_DIR_ENV)
        candidates = [Path(env)] if env else list(Path(__file__).resolve().parents)
    for candidate in candidates:
        if all((candidate / source).is_file() for source in PROJECT_FILES):
            return candidate.resolve()
    raise BuildContextError(
        f"no project checkout with {', '.join(PROJECT_FILES)} at "
        f"{', '.join(map(str, candidates[:3]))}; pass project_dir or set {PROJECT_DIR_ENV}"
    )


def download_model(model_name: str, version: str, model_dir: Path) -> Path:
    """The registered version's MLflow model directory plus ``model_card.json``."""
    import mlflow

    card = model_card(model_name, version)
    model_dir.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{model_name}/{version}", dst_path=str(model_dir)
    )
    (model_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return model_dir


def model_card(model_name: str, version: str) -> dict[str, Any]:
    """Who the baked model is, from the registered version and the tags training wrote."""
    found = registry.get_version(model_name, version)
    tags = found.tags
    run_id = found.run_id or tags.get("run_id")
    missing = [tag for tag in REQUIRED_TAGS if not tags.get(tag)] + ([] if run_id else ["run_id"])
    if missing:
        raise BuildContextError(
            f"{model_name} version {version} lacks provenance tags {missing}; only versions "
            "registered by the training job can be baked into an image"
        )
    return {
        "name": model_name,
        "version": str(found.version),
        "aliases": sorted(found.aliases),
        "trained_at": tags["trained_at"],
        "holdout_auc": float(tags["holdout_auc"]),
        "holdout_sha256": tags.get("holdout_sha256"),
        "family": tags.get("family"),
        "run_id": run_id,
        "data_sha256": tags["data_sha256"],
        "git_commit": tags["git_commit"],
        "source": found.source,
    }


def build_wheel(project: Path, dist_dir: Path) -> Path:
    """Build the project wheel with uv into ``dist_dir`` (only the wheel, no stray files)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*_uv_command(), "build", "--wheel", "--out-dir", tmp, str(project)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise BuildContextError(
                f"`{' '.join(cmd)}` exited {proc.returncode} with wheels {wheels}:\n"
                f"{proc.stderr[-2000:]}"
            )
        dist_dir.mkdir(parents=True)
        return Path(shutil.copyfile(wheels[0], dist_dir / wheels[0].name))


def _uv_command() -> list[str]:
    if found := shutil.which("uv"):
        return [found]
    if find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    raise BuildContextError("uv is needed to build the project wheel (pip install uv)")


def _normalise_permissions(root: Path) -> None:
    # The image copies these as root-owned files the non-root user must read; a restrictive umask
    # on the build machine would otherwise bake in files the app cannot open.
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def _write_build_record(root: Path, ctx: BuildContext, model_name: str) -> None:
    record = {
        **ctx.to_dict(),
        "model_name": model_name,
        "digest": content_digest(ctx.digest_inputs),
        "platform": PLATFORM,
        "docker_build_command": docker_build_command(ctx),
    }
    (root / BUILD_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def docker_build_command(ctx: BuildContext) -> list[str]:
    """What a machine with a Docker engine runs to build and tag the image from ``ctx``."""
    return [
        "docker",
        "build",
        "--platform",
        PLATFORM,
        "--file",
        str(ctx.path / "Dockerfile"),
        "--tag",
        ctx.image_ref,
        *_build_args(ctx),
        str(ctx.path),
    ]


def _build_args(ctx: BuildContext) -> list[str]:
    # Recorded as OCI labels by the Dockerfile: which tag and model version the image is.
    return [
        "--build-arg",
        f"IMAGE_TAG={ctx.tag}",
        "--build-arg",
        f"MODEL_VERSION={ctx.model_version}",
    ]


def acr_repository(ctx: BuildContext, registry: str) -> str:
    """The repository inside ACR ``registry`` that ``ctx.image_ref`` names.

    The rollout asks the cluster to pull ``ctx.image_ref``, so its registry host must be this
    ACR's login server (``<registry>.azurecr.io``); anything else would push one image and
    deploy another, and is refused.
    """
    name = ctx.image_ref.rsplit(":", 1)[0]
    host, _, repository = name.partition("/")
    if not repository or not host.lower().startswith(f"{registry.lower()}.azurecr."):
        raise ImageBuildError(
            f"the image {ctx.image_ref} is not in ACR {registry!r}: set "
            f"ATTRITION_WORKFLOW_IMAGE_REPOSITORY to {registry.lower()}.azurecr.io/<repository>"
        )
    return repository


def acr_build_command(ctx: BuildContext, registry: str) -> list[str]:
    """What builds ``ctx`` in ACR ``registry`` (its name) and pushes it as ``ctx.image_ref``."""
    return [
        "az",
        "acr",
        "build",
        "--registry",
        registry,
        "--image",
        f"{acr_repository(ctx, registry)}:{ctx.tag}",
        "--platform",
        PLATFORM,
        "--file",
        str(ctx.path / "Dockerfile"),
        *_build_args(ctx),
        str(ctx.path),
    ]


def acr_build(ctx: BuildContext, registry: str) -> None:
    """Build and push the image with ``az acr build``; raise ImageBuildError if it fails.

    az logs its progress on stderr and streams the build's log on stdout: both pass through to
    this process's (the task log) as they come, and the end of stderr, where az writes its
    ``ERROR:`` line, goes into the error.
    """
    command = acr_build_command(ctx, registry)
    if shutil.which(command[0]) is None:
        raise ImageBuildError(
            f"ATTRITION_WORKFLOW_ACR_NAME is {registry!r} but the Azure CLI (az) is not on "
            "this worker's PATH: install it there (and sign it in), or unset the setting"
        )
    run_streaming(command)
    log.info("built and pushed %s in ACR %s", ctx.image_ref, registry)


def run_streaming(command: Sequence[str], *, keep_lines: int = 40) -> None:
    """Run ``command``, passing its output through; ImageBuildError with the tail of its stderr."""
    tail: deque[str] = deque(maxlen=keep_lines)
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
    if proc.returncode != 0:
        said = "\n".join(tail) or "(nothing on stderr)"
        raise ImageBuildError(f"`{' '.join(command)}` exited {proc.returncode}:\n{said}")


def docker_engine_available(timeout: float = 30.0) -> bool:
    """Whether ``docker info`` reaches an engine (a CLI alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def maybe_docker_build(ctx: BuildContext) -> bool:
    """Build the image if an engine is reachable; otherwise log and return False.

    A build that starts and fails raises: a broken image must stop the deployment.
    """
    if not docker_engine_available():
        log.info(
            "no Docker engine here: build context assembled at %s without building %s "
            "(build it with: %s)",
            ctx.path,
            ctx.image_ref,
            " ".join(docker_build_command(ctx)),
        )
        return False
    subprocess.run(docker_build_command(ctx), check=True)
    log.info("built %s", ctx.image_ref)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble the serving image's build context.")
    parser.add_argument("model_name")
    parser.add_argument("version", help="a version number, or @alias (e.g. @champion)")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--registry-image", default="attrition-serving")
    parser.add_argument("--project-dir", type=Path)
    parser.add_argument(
        "--build", action="store_true", help="also docker build, if an engine is up"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    version = args.version
    if version.startswith("@"):
        configure_mlflow(get_settings())
        _, version = registry.resolve_model_uri(f"models:/{args.model_name}{version}")
    ctx = build_context(
        args.model_name,
        version,
        args.out_dir,
        registry_image=args.registry_image,
        project_dir=args.project_dir,
    )
    built = maybe_docker_build(ctx) if args.build else False
    print(json.dumps({**ctx.to_dict(), "built": built}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
