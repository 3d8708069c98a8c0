"""``run_job``'s output for people: printed, dropped, or handed to a task's logger."""

from __future__ import annotations

import json

import pytest

from attrition_mlops.runner import local

JOB = """import argparse, json
parser = argparse.ArgumentParser()
parser.add_argument("--output-json")
args = parser.parse_args()
print("decision: keep the champion")
print("evidence: 3 of 3 resamples")
result = {"ok": True}
open(args.output_json, "w").write(json.dumps(result))
print(json.dumps(result))
"""


@pytest.fixture
def jobs(tmp_path, monkeypatch):
    (tmp_path / "talk.py").write_text(JOB)
    monkeypatch.setenv(local.JOBS_DIR_ENV, str(tmp_path))


def test_a_callable_echo_receives_the_jobs_text_for_people_and_nothing_is_printed(jobs, capsys):
    said: list[str] = []
    assert local.run_job("talk", echo=said.append) == {"ok": True}
    assert said == ["decision: keep the champion\nevidence: 3 of 3 resamples"]
    assert capsys.readouterr().out == ""


def test_echo_true_prints_the_text_and_false_drops_it(jobs, capsys):
    local.run_job("talk")
    assert capsys.readouterr().out == "decision: keep the champion\nevidence: 3 of 3 resamples\n"
    local.run_job("talk", echo=False)
    out = capsys.readouterr().out
    assert out == "", json.dumps(out)
