"""Human-facing renderings of a gate decision: the plot and the terminal summary."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from attrition_mlops.gate.bootstrap import PairedBootstrap


def _ci(ci: Any) -> str:
    return f"95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "95% CI —"


def decision_headline(report: dict[str, Any]) -> str:
    """The verdict, the rule that gave it and the figure it compared with its threshold, e.g.
    ``PROMOTE (rule bootstrap): challenger v2 vs champion v1, win rate 96.0% ≥ 90%; ΔAUC
    +0.012, 95% CI [+0.001, +0.024]``. The plot's title; built from the decision report."""
    verdict = "PROMOTE" if report["decision"] == "promoted" else "REJECT"
    rule, gate = str(report["rule"]), report["gate"]
    champion = report.get("champion_version")
    pair = f"challenger v{report['challenger_version']}" + (
        f" vs champion v{champion}" if champion else ", no champion"
    )
    head = f"{verdict} (rule {rule}): {pair}"
    auc = report.get("auc_challenger")
    if rule.startswith(("cold_start", "auc_floor")) and auc is not None:
        sign = "≥" if auc >= gate["min_auc"] else "<"
        return f"{head}; holdout AUC {auc:.3f} {sign} floor {gate['min_auc']:g}"
    if rule.startswith("already_champion"):
        return f"{head}: it already holds champion"
    window = report.get("evidence_window") or {}
    if rule in ("window_bootstrap", "holdout_regression") and window.get("win_rate") is not None:
        minimum = gate["window_min_win_rate"]
        margin = max(gate["tie_tolerance"], gate["window_min_gain"])
        sign = "≥" if window["win_rate"] >= minimum else "<"
        text = (
            f"{head} on the recent window {window.get('first')}..{window.get('last')} "
            f"(n={window.get('n')}, {window.get('positives')} leavers), win rate "
            f"{window['win_rate']:.1%} {sign} {minimum:.0%} (gain > {margin:.3f} AUC); "
            f"ΔAUC {window['delta_auc']:+.3f}, {_ci(window.get('delta_auc_ci95'))}"
        )
        if rule == "holdout_regression":
            text += (
                f"; but frozen holdout ΔAUC {report['delta_auc']:+.3f} breaks the "
                f"non-regression margin {gate['holdout_margin']:g}"
            )
        return text
    if report.get("win_rate") is not None:
        win, minimum = report["win_rate"], gate["min_win_rate"]
        sign = "≥" if win >= minimum else "<"
        return (
            f"{head}, win rate {win:.1%} {sign} {minimum:.0%}; ΔAUC {report['delta_auc']:+.3f}, "
            f"{_ci(report.get('delta_auc_ci95'))}"
        )
    return head


def plot_decision(
    boot: PairedBootstrap,
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    report: dict[str, Any] | None = None,
) -> Figure:
    """ΔAUC bootstrap histogram (left) and both models' holdout ROC curves (right); with the
    decision ``report``, titled with its verdict, rule and threshold, and the rule's reason."""
    # Figure() directly (not pyplot) keeps this free of global GUI state in workers and servers.
    fig = Figure(figsize=(11, 5.2 if report else 4.5), layout="constrained")
    if report is not None:
        headline = decision_headline(report)
        promoted = report["decision"] == "promoted"
        fig.suptitle(
            headline,
            fontsize=10,
            fontweight="bold",
            color="#2a7a2a" if promoted else "#b22222",
            wrap=True,
        )
        fig.supxlabel(textwrap.fill(str(report.get("reason", "")), 170), fontsize=8)
    hist, roc = fig.subplots(1, 2)
    if "champion" in scores:
        lo, hi = boot.delta_ci(0.95)
        hist.hist(boot.delta, bins=50, color="#4c72b0")
        hist.axvline(0, color="black", lw=1)
        for edge in (lo, hi):
            hist.axvline(edge, color="#c44e52", ls="--", lw=1)
        ci = f"95% CI [{lo:+.3f}, {hi:+.3f}]"
        hist.set_title(f"Frozen holdout: paired bootstrap ΔAUC (B={boot.n_boot}), {ci}")
        hist.set_xlabel("AUC(challenger) − AUC(champion)")
    else:
        hist.hist(boot.auc_challenger_boot, bins=50, color="#4c72b0")
        hist.set_title(f"Cold start: challenger AUC bootstrap (B={boot.n_boot})")
        hist.set_xlabel("AUC(challenger)")
    hist.set_ylabel("resamples")
    for model, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        auc = boot.auc_challenger if model == "challenger" else boot.auc_champion
        roc.plot(fpr, tpr, label=f"{model} (AUC {auc:.3f})")
    roc.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    roc.set_xlabel("false-positive rate")
    roc.set_ylabel("true-positive rate")
    roc.set_title(f"Frozen holdout ROC (n={boot.n}, {boot.n_pos} leavers)")
    roc.legend(loc="lower right")
    return fig


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def format_decision(report: dict[str, Any]) -> str:
    """A short plain-text summary for terminals and task logs."""
    h = report["holdout"]
    ci = report.get("delta_auc_ci95")
    lines = [
        f"Decision: {report['decision'].upper()} ({report['rule']}): {report['reason']}",
        f"  challenger v{report['challenger_version']}  AUC {_fmt(report['auc_challenger'])}",
        f"  champion   v{report['champion_version'] or '—'}  AUC {_fmt(report['auc_champion'])}",
        f"  holdout n={h['n']} positives={h['positives']} sha256={h['sha256'][:12]}…",
        f"  ΔAUC {_fmt(report['delta_auc'], '+.4f')}  95% CI "
        + (f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "—")
        + f"  win rate {_fmt(report['win_rate'], '.1%')}  (B={report['n_boot']})",
        f"  power: {report['power']['statement']}",
        "  slices (challenger AUC / predicted-positive rate):",
    ]
    for row in report.get("slices", []):
        lines.append(
            f"    {row['attribute']:<13} {row['value']:<9} n={row['n']:<4} "
            f"AUC {_fmt(row['challenger_auc'], '.3f')}  "
            f"pos.rate {row['challenger_positive_rate']:.1%}  (base {row['base_rate']:.1%})"
        )
    if report.get("evaluation_run_id"):
        lines.append(f"  evaluation run: {report['evaluation_run_id']}")
    return "\n".join(lines)
