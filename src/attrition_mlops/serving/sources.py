"""Where the served model comes from: a baked model directory or the MLflow registry.

A source has two methods: ``current_version()`` (cheap: which version would ``load()`` give
now?) and ``load()`` (build a fully prepared :class:`LoadedModel`). The runtime polls the first
and calls the second only when the answer changes. These classes are the only serving code that
touches MLflow; routes only ever see a LoadedModel.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import joblib
import mlflow

from attrition_mlops import registry
from attrition_mlops.model.predictor import PREDICTOR_FILE, load_predictor
from attrition_mlops.registry.connection import bound_http_requests, display_uri, reaching
from attrition_mlops.serving.loaded import LoadedModel, ModelCard, prepare_model
from attrition_mlops.serving.settings import ServingSettings
from attrition_mlops.settings import PipelineSettings

log = logging.getLogger(__name__)
CARD_FILE = "model_card.json"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


class NoModelAvailableError(RuntimeError):
    """The source has nothing to serve yet (e.g. no version holds the alias)."""


class ModelSource(Protocol):
    description: str

    def current_version(self) -> str | None: ...

    def load(self) -> LoadedModel: ...


@dataclass(frozen=True)
class Preparation:
    fast_path: bool = True
    threads: int = 1


class DirectorySource:
    """An MLflow model directory (or a folder holding ``predictor.joblib``) on local disk.

    Metadata comes from ``model_card.json`` inside the directory or next to it. ``path`` may be
    a symlink: flipping it to another directory (atomically, with ``rename``) swaps models.
    """

    def __init__(self, path: Path, *, default_name: str, prep: Preparation = Preparation()):
        self.path = Path(path)
        self.default_name = default_name
        self.prep = prep
        self.description = f"model directory {self.path}"

    def _card_path(self, resolved: Path) -> Path | None:
        for candidate in (resolved / CARD_FILE, self.path.parent / CARD_FILE):
            if candidate.is_file():
                return candidate
        return None

    def _card(self, resolved: Path) -> ModelCard:
        path = self._card_path(resolved)
        if path is None:
            return ModelCard(name=self.default_name, version="unknown")
        return ModelCard.model_validate(json.loads(path.read_text()))

    def current_version(self) -> str | None:
        return self._card(self.path.resolve(strict=True)).version

    def load(self) -> LoadedModel:
        resolved = self.path.resolve(strict=True)  # pin the target: a flip mid-load can't mix
        card = self._card(resolved)
        if card.version == "unknown":
            log.warning("no %s in or next to %s: version unknown", CARD_FILE, resolved)
        if (resolved / "MLmodel").is_file():
            predictor = load_predictor(str(resolved))
        elif (resolved / PREDICTOR_FILE).is_file():
            predictor = joblib.load(resolved / PREDICTOR_FILE)
        else:
            raise FileNotFoundError(f"{resolved} holds neither an MLmodel nor {PREDICTOR_FILE}")
        return prepare_model(predictor, card, str(resolved), **vars(self.prep))


class RegistrySource:
    """A registered version: fixed, or whichever version an alias points at (followed)."""

    def __init__(
        self,
        pipeline: PipelineSettings,
        name: str,
        *,
        aliases: tuple[str, ...] = (),
        version: str | None = None,
        prep: Preparation = Preparation(),
    ) -> None:
        if (version is None) == (not aliases):
            raise ValueError("give either a fixed version or aliases to follow")
        self.pipeline, self.name, self.aliases, self.version = pipeline, name, aliases, version
        self.prep = prep
        target = f"/{version}" if version else "@" + " or @".join(aliases)
        self.registry_uri = pipeline.registry_uri or pipeline.resolved_tracking_uri
        self.description = f"registry models:/{name}{target} at {display_uri(self.registry_uri)}"
        self._connected = False

    def _connect(self) -> None:
        if not self._connected:  # global MLflow state: a serving process has one registry
            bound_http_requests()  # an unreachable server fails a call in seconds, not minutes
            mlflow.set_tracking_uri(self.pipeline.resolved_tracking_uri)
            mlflow.set_registry_uri(self.registry_uri)
            self._connected = True

    def _resolve(self) -> tuple[str | None, str] | None:
        self._connect()
        if self.version is not None:
            return None, self.version
        for alias in self.aliases:
            with reaching(self.registry_uri):
                version = registry.get_alias_version(self.name, alias)
            if version is not None:
                return alias, version
        return None

    def current_version(self) -> str | None:
        found = self._resolve()
        return None if found is None else found[1]

    def load(self) -> LoadedModel:
        found = self._resolve()
        if found is None:
            raise NoModelAvailableError(f"no version of {self.description} yet")
        alias, version = found
        uri = f"models:/{self.name}/{version}"
        with reaching(self.registry_uri):
            tags = registry.get_version(self.name, version).tags
            predictor = load_predictor(uri)
        card = ModelCard.model_validate(
            {**tags, "name": self.name, "version": version, "alias": alias}
        )
        return prepare_model(predictor, card, uri, **vars(self.prep))


def source_from_settings(settings: ServingSettings, pipeline: PipelineSettings) -> ModelSource:
    prep = Preparation(fast_path=settings.fast_path, threads=settings.threads)
    if settings.model_dir is not None:
        return DirectorySource(settings.model_dir, default_name=pipeline.model_name, prep=prep)
    if settings.model_uri is not None:
        match = _MODELS_URI.match(settings.model_uri)
        if match is None:
            raise ValueError(
                f"ATTRITION_SERVING_MODEL_URI={settings.model_uri!r}: expected "
                "models:/<name>/<version> or models:/<name>@<alias> (for a local model "
                "directory set ATTRITION_SERVING_MODEL_DIR)"
            )
        aliases = (match["alias"],) if match["alias"] else ()
        return RegistrySource(
            pipeline, match["name"], aliases=aliases, version=match["version"], prep=prep
        )
    aliases = tuple(a for a in (settings.alias, settings.fallback_alias) if a)
    return RegistrySource(pipeline, pipeline.model_name, aliases=aliases, prep=prep)
