"""The performance check's HTML report: self-contained, offline, every data value escaped.

Two sections, one per population: the batch scorer's predictions, then the online API's logged
predictions (or why they were not judged). Per model version: the verdict with the rule that made
it, a chart of realized AUC (with its CI) and the label-free estimate over the monthly cohorts,
the reliability curve of the judged cohort, and the cohort table. How to read it:
docs/performance.md.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

HTML_FILE = "performance_report.html"
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
td:first-child{text-align:left}
.degraded{background:#fde2e2}.ok{background:#e2f5e2}
.banner{background:#fff4ce;padding:.5em;border:1px solid #e0c36c}
figure{display:inline-block;margin:1em}
"""
_TABLE = (
    ("cohort", "cohort"),
    ("predictions", "n_predictions"),
    ("labelled", "n_labelled"),
    ("leavers", "n_positive"),
    ("coverage", "label_coverage"),
    ("AUC", "auc"),
    ("AUC CI", None),
    ("estimated AUC", "estimated_auc"),
    ("estimate CI", None),
    ("observed rate", "observed_rate"),
    ("mean predicted", "mean_predicted"),
    ("ECE", "ece"),
)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{digits}f}"


def _chart(chart: Any, alt: str) -> str:
    encoded = base64.b64encode(chart.render(is_unicode=True).encode()).decode("ascii")
    return f'<figure><img src="data:image/svg+xml;base64,{encoded}" alt="{_esc(alt)}"></figure>'


def _common(title: str) -> dict[str, Any]:
    return {
        "width": 520,
        "height": 260,
        "explicit_size": True,
        "js": [],
        "disable_xml_declaration": True,
        "legend_at_bottom": True,
        "title": title,
        "margin": 8,
    }


def _auc_chart(version: str, rows: pd.DataFrame, source: str = "batch") -> str:
    import pygal

    chart = pygal.Line(
        **_common(f"v{version} ({source}): AUC by cohort"),
        x_labels=list(rows["cohort"]),
        range=(0.4, 1.0),
    )
    for label, column in (
        ("realized", "auc"),
        ("realized CI low", "auc_low"),
        ("realized CI high", "auc_high"),
        ("estimated", "estimated_auc"),
    ):
        if column in rows:
            values = [None if pd.isna(v) else float(v) for v in rows[column]]
            chart.add(label, values)
    return _chart(chart, f"version {version} ({source}): realized and estimated AUC by cohort")


def _reliability_chart(version: str, table: list[dict[str, Any]], source: str = "batch") -> str:
    import pygal

    chart = pygal.XY(
        **_common(f"v{version} ({source}): reliability (judged cohort)"),
        x_title="mean predicted",
        y_title="observed rate",
        range=(0, 1),
        xrange=(0, 1),
    )
    chart.add("perfect calibration", [(0, 0), (1, 1)], show_dots=False)
    chart.add(
        "bins", [(row["mean_predicted"], row["observed_rate"]) for row in table], stroke=False
    )
    return _chart(chart, f"version {version} ({source}): observed vs predicted rate per bin")


def _verdict(version: str, verdict: dict[str, Any]) -> str:
    status = verdict["status"]
    if status == "insufficient_data":
        text = "no cohort has enough matured outcomes to judge yet"
    else:
        text = (
            f"judged on cohort {verdict['judged_cohort']}: realized AUC "
            f"{_num(verdict['realized_auc'])} (95 % CI {_num(verdict['auc_low'])}–"
            f"{_num(verdict['auc_high'])}), ECE {_num(verdict['ece'])}, "
            f"{verdict['n_labelled']:,} labelled, {verdict['n_positive']:,} leavers"
        )
        if verdict["reasons"]:
            text += "; degraded on " + " and ".join(verdict["reasons"])
    estimate = verdict.get("estimate")
    if estimate:
        text += (
            f". Estimated AUC (no labels) for cohort {estimate['cohort']}: "
            f"{_num(estimate['estimated_auc'])} ({_num(estimate['low'])}–"
            f"{_num(estimate['high'])})"
        )
        if verdict.get("estimate_dropped"):
            text += f", a drop beyond its CI from {_num(estimate['previous_estimated_auc'])}"
    css = "degraded" if status == "degraded" else "ok" if status == "ok" else ""
    return f'<p class="{css}"><b>v{_esc(version)}: {_esc(status)}</b> — {_esc(text)}.</p>'


def _table(rows: pd.DataFrame) -> str:
    head = "".join(f"<th>{_esc(name)}</th>" for name, _ in _TABLE)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for name, column in _TABLE:
            if name == "AUC CI":
                value = f"{_num(row.get('auc_low'))}–{_num(row.get('auc_high'))}"
            elif name == "estimate CI":
                value = f"{_num(row.get('estimate_low'))}–{_num(row.get('estimate_high'))}"
            elif column == "cohort":
                value = row[column]
            elif column and column.startswith("n_"):
                value = _num(None if pd.isna(row.get(column)) else int(row[column]))
            else:
                value = _num(row.get(column))
            cells.append(f"<td>{_esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _versions(
    verdicts: dict[str, Any],
    cohorts: pd.DataFrame,
    calibration: dict[str, list[dict[str, Any]]],
    source: str,
) -> list[str]:
    parts = []
    for version, verdict in verdicts.items():
        rows = cohorts[cohorts["model_version"] == version].sort_values("cohort")
        parts.append(f"<h3>Model version {_esc(version)} ({_esc(source)})</h3>")
        parts.append(_verdict(version, verdict))
        parts.append(_auc_chart(version, rows, source))
        if version in calibration:
            parts.append(_reliability_chart(version, calibration[version], source))
        parts.append(_table(rows))
    return parts


def _online(
    online: dict[str, Any], cohorts: pd.DataFrame, calibration: dict[str, list[dict[str, Any]]]
) -> list[str]:
    parts = [
        "<h2>Online predictions (the API's inference log)</h2>",
        "<p>Judged apart from the batch predictions: the API scores the employees someone asked "
        "about, not the whole workforce, so these cohorts are another population. Logged "
        "predictions are matched to outcomes by the API's keyed pseudonym.</p>",
    ]
    status = online.get("status", "not_judged")
    if online.get("reason"):
        parts.append(f"<p><b>Not judged</b>: {_esc(online['reason'])}.</p>")
    else:
        parts.append(f"<p>Overall (online): <b>{_esc(status)}</b>.</p>")
    if online.get("window"):
        counts = ", ".join(
            f"{_num(online[key])} {label}"
            for key, label in (
                ("n_records", "logged predictions"),
                ("n_rejected_lines", "malformed lines left out"),
                ("n_duplicate_lines", "replayed lines left out"),
                ("n_logged_employees", "employees logged"),
                ("n_matched_employees", "of them with outcomes"),
            )
            if online.get(key) is not None
        )
        window = " to ".join(online["window"])
        parts.append(f"<p>Logs {_esc(online.get('logs'))}, {_esc(window)}: {_esc(counts)}.</p>")
        if online.get("n_ledger_days"):  # days whose full log is gone or compacted
            parts.append(
                f"<p>Of these, {_num(online.get('n_ledger_records'))} predictions on "
                f"{_num(online['n_ledger_days'])} day(s) were read from the prediction ledger "
                f"{_esc(online.get('ledger'))} (one row per version, employee and day) and "
                f"{_num(online.get('n_log_records'))} from the full logs.</p>"
            )
    if online.get("n_simulated_records"):
        parts.append(
            f'<p class="banner">SIMULATED traffic: {online["n_simulated_records"]:,} of the '
            "logged predictions came from the traffic simulator.</p>"
        )
    for warning in online.get("warnings") or []:
        parts.append(f'<p class="banner">Warning: {_esc(warning)}.</p>')
    if online.get("rejected"):
        items = "".join(f"<li>{_esc(line)}</li>" for line in online["rejected"])
        shown = len(online["rejected"])
        parts.append(f"<p>Malformed lines (the first {shown}):</p><ul>{items}</ul>")
    parts += _versions(online.get("versions") or {}, cohorts, calibration, "online")
    return parts


def render_html(
    summary: dict[str, Any],
    cohorts: pd.DataFrame,
    calibration: dict[str, list[dict[str, Any]]],
    online: tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]] | None = None,
) -> str:
    online_part = summary.get("online") or {}
    parts = [
        f"<h1>Model performance as of {_esc(summary['as_of'])}</h1>",
        f"<p>Horizon {_esc(summary['horizon'])}; {summary['n_predictions']:,} batch predictions, "
        f"{summary['n_outcomes']:,} outcomes. Batch: <b>{_esc(summary['status'])}</b>; online: "
        f"<b>{_esc(online_part.get('status', 'not_judged'))}</b>. How to read this report: "
        "docs/performance.md.</p>",
    ]
    if summary.get("n_simulated_outcomes"):
        parts.append(
            f'<p class="banner">SIMULATED outcomes: {summary["n_simulated_outcomes"]:,} of the '
            "outcomes were made by the simulator, not delivered by HR.</p>"
        )
    parts.append("<h2>Batch predictions (the batch scorer)</h2>")
    if not summary["versions"]:
        parts.append("<p>No batch predictions up to this day.</p>")
    parts += _versions(summary["versions"], cohorts, calibration, "batch")
    online_cohorts, online_calibration = online or (pd.DataFrame(), {})
    parts += _online(online_part, online_cohorts, online_calibration)
    body = "\n".join(parts)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Model performance</title>'
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )


def write_report(
    summary: dict[str, Any],
    cohorts: pd.DataFrame,
    calibration: dict[str, list[dict[str, Any]]],
    out_dir: Path,
    online: tuple[pd.DataFrame, dict[str, list[dict[str, Any]]]] | None = None,
) -> dict[str, Path]:
    page = out_dir / HTML_FILE
    page.write_text(render_html(summary, cohorts, calibration, online), encoding="utf-8")
    return {"html": page, "summary": out_dir / "performance_summary.json"}
