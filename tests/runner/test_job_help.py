"""Every flag of every job (``jobs/*.py``) and of ``attrition`` says what it does in ``--help``.

Each job builds its parser in ``build_parser()`` (``main`` parses with it), so the parser can be
walked here without running the job.
"""

from __future__ import annotations

import argparse
import runpy

import pytest
from support import REPO

from attrition_mlops import cli

JOB_FILES = sorted((REPO / "jobs").glob("*.py"))


def _undescribed(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Options and positionals of ``parser`` (and of its sub-commands) with no help text."""
    missing = []
    if not (parser.description or "").strip():
        missing.append(f"{prefix or parser.prog}: no description")
    for action in parser._actions:
        name = prefix + "/".join(action.option_strings or [action.dest])
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for command, sub in action.choices.items():  # its line in the parent's --help
                if not (helps.get(command) or "").strip():
                    missing.append(f"{name} {command}: no help")
                missing += _undescribed(sub, f"{prefix}{command} ")
            continue
        if action.help is argparse.SUPPRESS or not (action.help or "").strip():
            missing.append(f"{name}: no help")
    return missing


def test_there_are_jobs_to_check():
    assert {path.stem for path in JOB_FILES} >= {"train", "evaluate", "score", "drift", "rollback"}


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda path: path.stem)
def test_every_job_flag_has_a_help_text(path):
    parser = runpy.run_path(str(path))["build_parser"]()
    assert _undescribed(parser) == []
    assert len(parser._actions) > 1  # more than --help: the walk saw the job's own flags
    parser.format_help()  # a stray % in a help text breaks --help: it raises here


def test_every_attrition_flag_and_command_has_a_help_text():
    parser = cli.build_parser()
    assert _undescribed(parser) == []
    assert {"status", "demo"} <= set(parser._subparsers._group_actions[0].choices)


def test_a_flag_without_help_is_found():
    """The walk itself: a parser with one undescribed flag and one undescribed sub-command."""
    parser = argparse.ArgumentParser(description="x")
    parser.add_argument("--described", help="does something")
    parser.add_argument("--bare")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("quiet", description="a command").add_argument("--deep")
    assert _undescribed(parser) == [
        "--bare: no help",
        "command quiet: no help",
        "quiet --deep: no help",
    ]


def test_attrition_demo_runs_the_jobs_demo_with_its_flag(monkeypatch):
    from attrition_mlops.runner import demo

    calls = []
    monkeypatch.setattr(demo, "main", lambda argv: calls.append(argv) or 0)
    assert cli.main(["demo", "--n-trials", "3"]) == 0 and cli.main(["demo"]) == 0
    assert calls == [["--n-trials", "3"], []]
