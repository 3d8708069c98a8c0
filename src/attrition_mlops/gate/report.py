"""Human-facing renderings of a gate decision: the plot and the terminal summary."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from attrition_mlops.gate.bootstrap import PairedBootstrap


def plot_decision(boot: PairedBootstrap, y: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ΔAUC bootstrap histogram (left) and both models' holdout ROC curves (right)."""
    # Figure() directly (not pyplot) keeps this free of global GUI state in workers and servers.
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    hist, roc = fig.subplots(1, 2)
    if "champion" in scores:
        lo, hi = boot.delta_ci(0.95)
        hist.hist(boot.delta, bins=50, color="#4c72b0")
        hist.axvline(0, color="black", lw=1)
        for edge in (lo, hi):
            hist.axvline(edge, color="#c44e52", ls="--", lw=1)
        hist.set_title(f"Paired bootstrap ΔAUC (B={boot.n_boot}); 95% CI [{lo:+.3f}, {hi:+.3f}]")
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
