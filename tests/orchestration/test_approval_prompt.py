"""What an approver reads: the Required-actions prompt and the ``approval_requested`` alert say
what production runs now and give the candidate's gate evidence, with links."""

from __future__ import annotations

from attrition_mlops.orchestration.approval_prompt import (
    ApprovalEvidence,
    approval_body,
    approval_subject,
    requested_alert_fields,
)
from attrition_mlops.settings import WorkflowSettings

# A decision report as gate/evaluate.py writes it (decision_report.json), trimmed to what the
# prompt reads: a promotion on the recent window, with the frozen holdout as the guard.
WINDOW_REPORT = {
    "challenger_version": "7",
    "champion_version": "5",
    "decision": "promoted",
    "rule": "window_bootstrap",
    "reason": "challenger gains more than 0.005 AUC in 96.2% of 2000 paired resamples",
    "holdout": {"sha256": "ab" * 32, "n": 294, "positives": 47},
    "auc_challenger": 0.8312,
    "delta_auc": -0.0041,
    "delta_auc_ci95": [-0.0213, 0.0127],
    "win_rate": 0.331,
    "evidence_window": {
        "usable": True,
        "first": "2026-06-01",
        "last": "2026-11-30",
        "n": 300,
        "positives": 61,
        "delta_auc": 0.0384,
        "delta_auc_ci95": [0.0071, 0.0702],
        "win_rate": 0.962,
    },
}
LINKS = {
    "evaluation run": "http://mlflow.example/#/experiments/1/runs/abc123",
    "staging smoke test log": "http://airflow.example/dags/attrition_deployment/runs/r1/tasks/"
    "smoke_test_staging",
    "model version": "http://mlflow.example/#/models/employee_attrition/versions/7",
}
SMOKE = {
    "base_url": "http://127.0.0.1:8101",
    "passed": True,
    "checks": [{"name": "ready", "ok": True}, {"name": "predict", "ok": True}],
    "duration_s": 1.234,
}


def _evidence(**overrides) -> ApprovalEvidence:
    fields = {
        "model_name": "employee_attrition",
        "version": "7",
        "production": "5",
        "smoke": SMOKE,
        "gate": WINDOW_REPORT,
        "links": LINKS,
    }
    return ApprovalEvidence(**(fields | overrides))


def test_the_prompt_says_what_production_runs_and_gives_the_gate_evidence_with_links():
    evidence = _evidence()
    assert approval_subject(evidence) == (
        "Deploy employee_attrition v7 to production? (production runs v5)"
    )
    body = approval_body(evidence)
    assert "**Production runs now:** version 5." in body
    assert "staging smoke test passed: 2/2 checks in 1.2 s against http://127.0.0.1:8101" in body
    assert "- decision: **promoted** by rule `window_bootstrap`, v7 against champion v5" in body
    assert (
        "- recent window 2026-06-01..2026-11-30 (n=300, 61 leavers): ΔAUC +0.0384, "
        "95% CI [+0.0071, +0.0702], challenger wins 96.2% of resamples"
    ) in body
    assert (
        "- frozen holdout (n=294, 47 leavers): ΔAUC -0.0041, 95% CI [-0.0213, +0.0127], "
        "challenger wins 33.1% of resamples; challenger AUC 0.8312"
    ) in body
    assert f"- reason: {WINDOW_REPORT['reason']}" in body
    for name, url in LINKS.items():
        assert f"[{name}]({url})" in body
    assert "**Reject** keeps version 5 in production (staging keeps 7) and fails this run." in body
    assert "Could not read" not in body


def test_a_first_rollout_a_cold_start_and_missing_evidence_are_said_not_guessed():
    cold = {
        "challenger_version": "1",
        "champion_version": None,
        "decision": "promoted",
        "rule": "cold_start",
        "reason": "no champion yet; holdout AUC 0.8100 ≥ floor 0.6500",
        "holdout": {"n": 294, "positives": 47},
        "auc_challenger": 0.81,
        "delta_auc": None,
        "delta_auc_ci95": None,
        "win_rate": None,
        "evidence_window": {"usable": False, "note": "the first snapshot holds no window"},
    }
    evidence = _evidence(version="1", production=None, gate=cold, links={})
    assert approval_subject(evidence).endswith("(production runs nothing)")
    body = approval_body(evidence)
    assert "**Production runs now:** nothing (this is the first production rollout)." in body
    assert "v1 against no champion (cold start)" in body
    assert "- recent window: none (the first snapshot holds no window)" in body
    assert "no champion to compare with; challenger AUC 0.8100" in body
    assert "**Links:**" not in body
    assert "**Reject** leaves production without a model (staging keeps 1)" in body

    unknown = _evidence(
        production=None,
        production_known=False,
        gate=None,
        smoke=None,
        missing=("the deployment record (read_deployed)", "the staging smoke test"),
    )
    body = approval_body(unknown)
    assert "**Production runs now:** unknown (the deployment record could not be read)." in body
    assert "the gate never judged this version (deployed on demand): no evidence" in body
    assert "staging smoke test: no report" in body
    assert (
        "**Could not read:** the deployment record (read_deployed); the staging smoke test."
    ) in body
    assert "**Reject** keeps its current version in production" in body
    assert approval_subject(unknown).endswith("(production runs an unknown version)")


def test_the_approval_requested_alert_carries_the_same_evidence():
    fields = requested_alert_fields(_evidence(), timeout_hours=24)
    assert fields["title"] == approval_subject(_evidence())
    assert "Production runs version 5." in fields["summary"]
    assert "within 24 h" in fields["summary"]
    assert "ΔAUC +0.0384, 95% CI [+0.0071, +0.0702]" in fields["summary"]
    assert fields["links"] == LINKS
    details = fields["details"]
    assert details["production_version"] == "5" and details["version"] == "7"
    assert (details["gate_decision"], details["gate_rule"]) == ("promoted", "window_bootstrap")
    assert details["delta_auc_ci95"] == [-0.0213, 0.0127] and details["win_rate"] == 0.331
    assert details["window"] == {
        "first": "2026-06-01",
        "last": "2026-11-30",
        "n": 300,
        "delta_auc_ci95": [0.0071, 0.0702],
        "win_rate": 0.962,
        "usable": True,
    }


def test_approvers_are_a_comma_separated_list_of_airflow_user_ids(monkeypatch):
    assert WorkflowSettings().approvers == ()
    monkeypatch.setenv("ATTRITION_WORKFLOW_APPROVERS", " alice , bob,,")
    assert WorkflowSettings().approvers == ("alice", "bob")


def test_evidence_that_cannot_be_formatted_still_asks_and_says_why(monkeypatch):
    from attrition_mlops.orchestration import deploy
    from attrition_mlops.orchestration.approval import DeploymentApprovalOperator

    def broken(version, context):
        raise ValueError("too many values to unpack")

    monkeypatch.setattr(deploy, "approval_evidence", broken)
    approve = DeploymentApprovalOperator(task_id="approve_production", version="7", subject="s")
    announced = []
    monkeypatch.setattr(approve, "_announce", lambda ctx, event, fields: announced.append(fields))
    approve._ask({}, timeout_hours=24)
    assert approve.body.startswith(
        "The evidence for version 7 could not be gathered (ValueError: too many values to unpack)"
    )
    assert announced == [{"summary": approve.body, "details": {"version": "7"}}]
