"""What an approver reads: the Required-actions prompt and the ``approval_requested`` alert.

Pure formatting over :class:`ApprovalEvidence`, which ``deploy.approval_evidence`` gathers (the
deployment record, the staging smoke test, the gate's decision report, links). Whatever could
not be read is said, never guessed: an approver must not take a blank for "no risk".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ApprovalEvidence:
    """Everything the prompt says about one production rollout."""

    model_name: str
    version: str
    production: str | None  # the model version production runs now; None: nothing yet
    production_image: str | None = None
    production_known: bool = True  # False: the deployment record could not be read
    smoke: Mapping[str, Any] | None = None  # the staging smoke test's report
    gate: Mapping[str, Any] | None = None  # the gate's decision report (decision_report.json)
    links: Mapping[str, str] = field(default_factory=dict)
    missing: Sequence[str] = ()  # what could not be read, in words


def _running(evidence: ApprovalEvidence) -> str:
    if not evidence.production_known:
        return "unknown (the deployment record could not be read)"
    if evidence.production is None:
        return "nothing (this is the first production rollout)"
    image = f" (image `{evidence.production_image}`)" if evidence.production_image else ""
    return f"version {evidence.production}{image}"


def _ci(values: Sequence[float] | None) -> str:
    if not values:
        return "n/a"
    low, high = values
    return f"[{low:+.4f}, {high:+.4f}]"


def _comparison(block: Mapping[str, Any]) -> str:
    """ΔAUC, its 95 % CI and the win rate of one paired bootstrap (window or holdout)."""
    if block.get("delta_auc") is None:
        return "no champion to compare with"
    text = f"ΔAUC {block['delta_auc']:+.4f}, 95% CI {_ci(block.get('delta_auc_ci95'))}"
    if block.get("win_rate") is not None:
        text += f", challenger wins {block['win_rate']:.1%} of resamples"
    return text


def gate_lines(gate: Mapping[str, Any] | None) -> list[str]:
    """The gate's evidence as markdown list items (window first: it decides when usable)."""
    if not gate:
        return ["- the gate never judged this version (deployed on demand): no evidence"]
    champion = gate.get("champion_version")
    lines = [
        f"- decision: **{gate.get('decision', '?')}** by rule `{gate.get('rule', '?')}`, "
        f"v{gate.get('challenger_version', '?')} against "
        + (f"champion v{champion}" if champion else "no champion (cold start)")
    ]
    window = gate.get("evidence_window") or {}
    if window.get("first"):
        where = (
            f"{window['first']}..{window['last']} (n={window.get('n')}, "
            f"{window.get('positives')} leavers)"
        )
        usable = "" if window.get("usable") else " — too small, not used"
        lines.append(f"- recent window {where}{usable}: {_comparison(window)}")
    else:
        lines.append(f"- recent window: none ({window.get('note') or 'not recorded'})")
    holdout = gate.get("holdout") or {}
    auc = gate.get("auc_challenger")
    lines.append(
        f"- frozen holdout (n={holdout.get('n', '?')}, {holdout.get('positives', '?')} leavers): "
        f"{_comparison(gate)}" + (f"; challenger AUC {auc:.4f}" if auc is not None else "")
    )
    if gate.get("reason"):
        lines.append(f"- reason: {gate['reason']}")
    return lines


def _smoke_line(smoke: Mapping[str, Any] | None) -> str:
    if not smoke:
        return "staging smoke test: no report"
    checks = smoke.get("checks") or []
    passed = sum(1 for c in checks if c.get("ok"))
    verdict = "passed" if smoke.get("passed") else "FAILED"
    return (
        f"staging smoke test {verdict}: {passed}/{len(checks)} checks in "
        f"{smoke.get('duration_s', 0):.1f} s against {smoke.get('base_url', '?')}"
    )


def _now(evidence: ApprovalEvidence) -> str:
    if not evidence.production_known:
        return "an unknown version"
    return "nothing" if evidence.production is None else f"v{evidence.production}"


def approval_subject(evidence: ApprovalEvidence) -> str:
    now = _now(evidence)
    return (
        f"Deploy {evidence.model_name} v{evidence.version} to production? (production runs {now})"
    )


def approval_body(evidence: ApprovalEvidence) -> str:
    """The prompt's markdown body: now, candidate, evidence, links, what each answer does."""
    if evidence.production is not None:
        reject = f"keeps version {evidence.production} in production"
    elif evidence.production_known:
        reject = "leaves production without a model"
    else:
        reject = "keeps its current version in production"
    parts = [
        f"**Production runs now:** {_running(evidence)}.",
        f"**Candidate:** version {evidence.version}; {_smoke_line(evidence.smoke)}.",
        "**Gate evidence:**",
        "\n".join(gate_lines(evidence.gate)),
    ]
    if evidence.links:
        parts.append(
            "**Links:** " + " · ".join(f"[{name}]({url})" for name, url in evidence.links.items())
        )
    if evidence.missing:
        parts.append("**Could not read:** " + "; ".join(evidence.missing) + ".")
    parts.append(
        f"**Approve** rolls version {evidence.version} out to production. **Reject** {reject} "
        f"(staging keeps {evidence.version}) and fails this run."
    )
    return "\n\n".join(parts)


def requested_alert_fields(evidence: ApprovalEvidence, timeout_hours: float) -> dict[str, Any]:
    """Fields of the ``approval_requested`` alert (title, summary, details, links)."""
    gate = evidence.gate or {}
    window = gate.get("evidence_window") or {}
    summary = (
        f"Staging passed its smoke test with version {evidence.version}. Production runs "
        f"{_running(evidence)}. Approve or reject under Required actions within "
        f"{timeout_hours:g} h.\n" + "\n".join(gate_lines(evidence.gate))
    )
    return {
        "title": approval_subject(evidence),
        "summary": summary,
        "details": {
            "version": evidence.version,
            "production_version": evidence.production,
            "gate_decision": gate.get("decision"),
            "gate_rule": gate.get("rule"),
            "delta_auc_ci95": gate.get("delta_auc_ci95"),
            "win_rate": gate.get("win_rate"),
            "window": {
                k: window.get(k)
                for k in ("first", "last", "n", "delta_auc_ci95", "win_rate", "usable")
            }
            if window.get("first")
            else None,
            "timeout_hours": timeout_hours,
            "missing": list(evidence.missing) or None,
        },
        "links": dict(evidence.links),
    }
