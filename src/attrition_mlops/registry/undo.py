"""Compensating writes for an alias move: the MLflow registry has no transactions.

A move writes a history tag, one or two aliases and audit tags on two versions. Each write first
records how to undo it; if a later write fails, the recorded steps run newest first, so the alias,
its history and the audit tags never disagree. (A process killed mid-move cannot undo: the
runbook's registry section says how to correct that by hand.)
"""

from __future__ import annotations

import logging

from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


class Undo:
    """Compensating writes, run newest first if a move fails half-way (the registry has no
    transactions), so the alias and its audit record never disagree."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.steps = client, []

    def add(self, step, *args) -> None:
        self.steps.append((step, args))

    def run(self) -> None:
        for step, args in reversed(self.steps):
            try:
                step(*args)
            except Exception:  # keep undoing the rest; the history says what happened
                log.exception("could not undo a registry write (%s%s)", step.__name__, args)


def point(client: MlflowClient, name: str, alias: str, version: str | None) -> None:
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def repoint(undo: Undo, name: str, alias: str, old: str | None, version: str | None) -> None:
    if old != version:
        undo.add(point, undo.client, name, alias, old)
        point(undo.client, name, alias, version)


def tag_version(undo: Undo, name: str, version: str, tags: dict[str, str]) -> None:
    before = undo.client.get_model_version(name, version).tags
    for key, value in tags.items():
        if key in before:
            undo.add(undo.client.set_model_version_tag, name, version, key, before[key])
        else:
            undo.add(undo.client.delete_model_version_tag, name, version, key)
        undo.client.set_model_version_tag(name, version, key, str(value))
