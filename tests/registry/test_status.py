"""``attrition status`` / ``make status``: a readable table of every alias and its history.

Against a real MLflow store (SQLite): versions with the tags training writes, aliases moved
through the audited path, a rollback; the table must show each alias's holder (the
``previous-*`` pointers too), its training time and holdout AUC, who moved it, when and why,
then each alias's latest history entries. ``--json`` keeps the machine-readable form.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from attrition_mlops import cli, registry
from attrition_mlops.registry.status import format_status, read_status


def _register(name: str, tmp_path, n: int) -> list[str]:
    client = MlflowClient()
    client.create_registered_model(name)
    versions = []
    for i in range(1, n + 1):
        tags = {"trained_at": f"2026-11-0{i}T09:30:00+00:00", "holdout_auc": f"0.8{i}123456"}
        source = tmp_path / f"v{i}"
        source.mkdir()
        versions.append(str(client.create_model_version(name, str(source), tags=tags).version))
    return versions


def _move(name, alias, version, actor, reason):
    held = registry.get_alias_version(name, alias)
    registry.move_alias(name, alias, version, expected=held, actor=actor, reason=reason)


@pytest.fixture
def lifecycle(mlflow_store, tmp_path) -> str:
    """champion v1 → v2 → v3, rolled back to v2; production v1; challenger v3."""
    name = mlflow_store.model_name
    v1, v2, v3 = _register(name, tmp_path, 3)
    _move(name, registry.CHAMPION, v1, "gate", "cold start: no champion yet")
    _move(name, registry.PRODUCTION, v1, "airflow:deploy/run-1", "approved by alice")
    _move(name, registry.CHAMPION, v2, "gate", "win rate 0.97 >= 0.90 " + "x" * 80)
    _move(name, registry.CHAMPION, v3, "gate", "win rate 0.95 >= 0.90")
    registry.rollback_alias(name, registry.CHAMPION, actor="oncall", reason="bad canary")
    _move(name, registry.CHALLENGER, v3, "train", "trained")
    return name


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def _rows(out: str) -> dict[str, list[str]]:
    """The alias table: first cell → the row's cells."""
    table = out.split("\n\n")[1].splitlines()
    assert _cells(table[0])[:2] == ["ALIAS", "VERSION"]
    return {cells[0]: cells for cells in map(_cells, table[1:])}


def _history(out: str, alias: str) -> tuple[str, list[list[str]]]:
    """An alias's history block: its title, and its rows' cells."""
    block = next(b for b in out.split("\n\n") if b.startswith(f"{alias}: "))
    title, header, *rows = block.splitlines()
    assert _cells(header)[0] == "SEQ"
    return title, [_cells(row) for row in rows]


_MINUTE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


def test_status_is_a_table_of_holders_then_histories(lifecycle, capsys):
    assert cli.main(["status", "--history", "3"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert list(rows) == ["champion", "previous-champion", "challenger", "production"]
    assert rows["champion"][:4] == ["champion", "2", "2026-11-02 09:30", "0.8212"]
    assert _MINUTE.fullmatch(rows["champion"][4]) and rows["champion"][5:] == [
        "oncall",
        "bad canary",
    ]
    assert rows["previous-champion"] == [
        "previous-champion",
        "1",
        "2026-11-01 09:30",
        "0.8112",
        "-",
        "-",
        "where a rollback of champion goes",
    ]
    assert rows["challenger"][1:4] == ["3", "2026-11-03 09:30", "0.8312"]
    assert rows["production"][5:] == ["airflow:deploy/run-1", "approved by alice"]
    # Each alias's latest moves, newest first; a long reason is clipped in the table.
    title, moves = _history(out, "champion")
    assert title == "champion: latest 3 of 4 moves, newest first"
    assert [(m[0], m[2], m[3], m[4]) for m in moves] == [
        ("#4", "rollback", "3 -> 2", "oncall"),
        ("#3", "promotion", "2 -> 3", "gate"),
        ("#2", "promotion", "1 -> 2", "gate"),
    ]
    assert all(_MINUTE.fullmatch(m[1]) for m in moves)
    assert moves[2][5].startswith("win rate 0.97 >= 0.90 xxx") and moves[2][5].endswith("…")
    title, moves = _history(out, "production")
    assert title == "production: 1 move, newest first"
    assert moves[0][2:] == ["promotion", "- -> 1", "airflow:deploy/run-1", "approved by alice"]


def test_json_keeps_every_tag_untruncated(lifecycle, capsys):
    assert cli.main(["status", "--json", "--history", "0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == read_status(MlflowClient(), lifecycle, 0)
    assert shown["champion"]["history_entries"] == 4 and len(shown["champion"]["history"]) == 4
    assert shown["production"]["audit.production.moved_by"] == "airflow:deploy/run-1"
    assert shown["champion"]["history"][2]["why"].endswith("x" * 80)


def test_an_empty_registry_says_what_to_do(mlflow_store, capsys):
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"No registered model {mlflow_store.model_name!r}" in out and "make jobs-demo" in out


def test_status_creates_no_store_where_there_is_none(state_dir, capsys):
    """A fresh checkout: status says nothing is registered, and leaves no .state/ behind."""
    assert cli.main(["status"]) == 0
    assert "No registered model" in capsys.readouterr().out
    assert not state_dir.exists()


def test_the_table_shows_utc_and_removed_aliases():
    status = {
        "staging": {
            "version": None,
            "history": [
                {
                    "seq": 2,
                    "at": "2026-11-02T01:30:00+02:00",
                    "action": "deletion",
                    "from_version": "4",
                    "to_version": None,
                    "by": "deploy",
                    "why": "failed",
                }
            ],
            "history_entries": 2,
        },
        "production": {
            "version": "4",
            "trained_at": "2026-11-01T23:30:00-01:00",
            "holdout_auc": "0.8",
            "audit.production.moved_at": "not a date",
        },
    }
    out = format_status(status, "m", "sqlite:///x.db")
    rows = _rows(out)
    assert (
        rows["staging"][1:3] == ["(none)", "-"]
        and rows["staging"][-1] == "removed; see the history"
    )
    assert rows["production"][1:5] == ["4", "2026-11-02 00:30", "0.8000", "not a date"]
    title, moves = _history(out, "staging")
    assert title == "staging: latest 1 of 2 moves, newest first"
    assert moves == [["#2", "2026-11-01 23:30", "deletion", "4 -> -", "deploy", "failed"]]


@pytest.mark.integration  # a fresh interpreter, to see what the command imports
def test_help_answers_without_importing_mlflow(tmp_path):
    probe = (
        "import sys\nfrom attrition_mlops import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pandas', 'airflow'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=True,
    )
    assert "usage: attrition" in done.stdout and done.stdout.strip().endswith("[]")
