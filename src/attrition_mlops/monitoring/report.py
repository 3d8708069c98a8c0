"""The drift check's artifacts: ``drift_summary.json`` and a self-contained ``drift_report.html``.

The HTML has inline CSS and one embedded SVG chart per drifted feature (reference vs current
histogram, or level shares), so it can be attached to an alert or an MLflow run and opened
anywhere, offline. Every piece of text from data is HTML-escaped.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from attrition_mlops.data.inference_log import count_simulated
from attrition_mlops.monitoring.drift import DriftResult, FeatureDrift
from attrition_mlops.monitoring.two_sample import Sample

SUMMARY_FILE = "drift_summary.json"
HTML_FILE = "drift_report.html"
#: The runbook section for each status (docs/runbook.md anchors).
RUNBOOK_ANCHORS = {
    "drift": "alert-drift-confirmed",
    "insufficient_data": "alert-drift-insufficient-data",
    "no_drift": "drift-check-results",
}
#: Where :func:`add_links` inserts links known only after the report was written.
_LINKS_END = "<!-- links end -->"
_COLUMNS = (
    "feature",
    "kind",
    "test",
    "statistic",
    "p",
    "adjusted p",
    "PSI",
    "Wasserstein",
    "W / ref SD",
    "effect ratio",
    "drifted",
    "reference → current",
    "note",
)
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
td:first-child,td:nth-child(2),td:nth-child(3),td:nth-last-child(-n+2){text-align:left}
tr.drifted{background:#fde2e2}
.status{font-size:1.2em;font-weight:bold}
.banner{background:#fff4ce;padding:.5em;border:1px solid #e0c36c}
figure{display:inline-block;margin:1em}
"""


@functools.cache
def _style():
    from pygal.style import Style

    # Two series that overlap (numeric histograms): half-transparent, as in the table's colours.
    return Style(
        background="white",
        plot_background="white",
        opacity=".55",
        opacity_hover=".8",
        colors=("#1f77b4", "#ff7f0e"),
        font_family="system-ui, sans-serif",
    )


@dataclass(frozen=True)
class ReportContext:
    """What a report is about and where it leads on from.

    ``window``: the first and last UTC day checked; ``checked_at``: when (ISO 8601, UTC);
    ``runbook_url``: the runbook page, whose section for the result's status the report links;
    ``links``: name → URL (or path) of the run that made the report (Airflow run, ...).
    """

    model_name: str = ""
    model_version: str = ""
    window: tuple[str, str] | None = None
    checked_at: str = ""
    runbook_url: str = ""
    links: Mapping[str, str] = field(default_factory=dict)


def describe_check(
    model_name: str, model_version: str, window: tuple[str, str] | None, checked_at: str
) -> str:
    """``employee_attrition v3, window 2026-12-06, checked 2026-12-07 01:31 UTC``: which model
    version's traffic, which days, and when; the report's and the drift alert's title say it."""
    model = " ".join(filter(None, [model_name, f"v{model_version}" if model_version else ""]))
    parts = [model or "model version unknown"]
    if window:
        first, last = window
        parts.append(f"window {first}" if first == last else f"window {first}..{last}")
    if checked_at:
        parts.append(f"checked {checked_at[:16].replace('T', ' ')} UTC")
    return ", ".join(parts)


def report_title(context: ReportContext) -> str:
    return "Drift report: " + describe_check(
        context.model_name, context.model_version, context.window, context.checked_at
    )


def report_links(status: str, context: ReportContext) -> dict[str, str]:
    """The runbook section for ``status``, then the run's links."""
    links = {}
    if context.runbook_url and status in RUNBOOK_ANCHORS:
        links["runbook"] = f"{context.runbook_url}#{RUNBOOK_ANCHORS[status]}"
    return links | dict(context.links)


def write_report(
    result: DriftResult,
    reference_profile: Mapping[str, Any],
    current: pd.DataFrame,
    out_dir: Path | str,
    lines: Mapping[str, int] | None = None,
    context: ReportContext | None = None,
) -> dict[str, Path]:
    """Write both artifacts into ``out_dir`` (created if needed); returns {"summary", "html"}.

    ``lines``: the window's counts of log lines left out of the check, by reason
    (``monitoring.line_counts``), shown in both artifacts. ``context``: the title's model
    version, window and date, and the links (runbook, run).
    """
    context = context or ReportContext()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = out / SUMMARY_FILE
    content = {"title": report_title(context), **result.to_dict()}
    content["links"] = report_links(result.status, context)
    content |= {"window_lines_left_out": dict(lines)} if lines else {}
    summary.write_text(json.dumps(content, indent=2, allow_nan=False), encoding="utf-8")
    page = out / HTML_FILE
    html_text = render_html(result, reference_profile, current, lines, context)
    page.write_text(html_text, encoding="utf-8")
    return {"summary": summary, "html": page}


def add_links(report_dir: Path | str, links: Mapping[str, str]) -> list[Path]:
    """Add ``links`` to every drift report under ``report_dir`` (HTML and summary), for links
    that exist only after the reports were written (the MLflow run that stores them)."""
    changed = []
    for page in sorted(Path(report_dir).rglob(HTML_FILE)):
        text = page.read_text(encoding="utf-8")
        if _LINKS_END in text:
            page.write_text(text.replace(_LINKS_END, _link_items(links) + _LINKS_END), "utf-8")
            changed.append(page)
        summary = page.with_name(SUMMARY_FILE)
        if summary.is_file():
            content = json.loads(summary.read_text(encoding="utf-8"))
            content["links"] = {**content.get("links", {}), **links}
            summary.write_text(json.dumps(content, indent=2, allow_nan=False), encoding="utf-8")
    return changed


def _link_items(links: Mapping[str, str]) -> str:
    return "".join(
        f'<li>{_esc(name)}: <a href="{_esc(url)}">{_esc(url)}</a></li>\n'
        for name, url in links.items()
    )


def render_html(
    result: DriftResult,
    reference_profile: Mapping[str, Any],
    current: pd.DataFrame,
    lines: Mapping[str, int] | None = None,
    context: ReportContext | None = None,
) -> str:
    """The report page as one string."""
    context = context or ReportContext()
    title = _esc(report_title(context))
    links = _link_items(report_links(result.status, context))
    ordered = sorted(result.features, key=lambda f: (not f.drifted, -f.effect_ratio, f.name))
    rows = "\n".join(_row(f) for f in ordered)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
    by_name = {f.name: f for f in result.features}
    figures = "\n".join(
        _figure(by_name[name], reference_profile, current, result)
        for name in result.drifted_features
    )
    n_simulated = count_simulated(current)
    banner = (
        f'<p class="banner">SIMULATED traffic: {n_simulated:,} of {len(current):,} records in '
        "this window were simulated (marked so in the inference log), not real employees.</p>"
    )
    thresholds = ", ".join(f"{k} = {v:g}" for k, v in result.thresholds.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_CSS}</style></head><body>
<h1>{title}</h1>
{banner if n_simulated else ""}
<p class="status">{_esc(result.status)}: {_esc(result.message)}</p>
<ul class="links">
{links}{_LINKS_END}
</ul>
{_left_out(lines)}
<p>{result.n_current} current records vs {result.n_reference} reference records;
{_esc(result.correction)} correction at alpha = {result.alpha:g}; {_esc(thresholds)}.
A feature is drifted when its adjusted p-value is below alpha and its effect ratio
(effect size over its configured minimum) is at least 1.</p>
<table><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
{figures}
</body></html>
"""


def _left_out(lines: Mapping[str, int] | None) -> str:
    """The window's log lines that no version's check saw, by reason (always shown when given)."""
    if lines is None:
        return ""
    return (
        f"<p>Log lines left out of this window's check: {lines['n_rejected_lines']:,} rejected "
        f"(invalid), {lines['n_duplicate_lines']:,} duplicate (request_id read before), "
        f"{lines['n_unknown_version_lines']:,} from model versions not in the registry "
        f"({lines['n_unknown_version_records']:,} records). The job summary lists them.</p>"
    )


def _row(feature: FeatureDrift) -> str:
    cells = (
        feature.name,
        feature.kind,
        feature.test,
        _num(feature.statistic),
        _p(feature.p_value),
        _p(feature.p_adjusted),
        _num(feature.psi),
        _num(feature.wasserstein),
        _num(feature.wasserstein_sd),
        _num(feature.effect_ratio),
        "yes" if feature.drifted else "no",
        _change(feature),
        feature.note,
    )
    css = ' class="drifted"' if feature.drifted else ""
    return f"<tr{css}>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>"


def _figure(
    feature: FeatureDrift,
    reference_profile: Mapping[str, Any],
    current: pd.DataFrame,
    result: DriftResult,
):
    """One drifted feature's chart as an embedded SVG image, drawn by pygal; nothing fetched.

    Numeric: reference and current densities over the same bins, overlaid; the current column
    is counted once (:class:`Sample`), so a million values cost one ``bincount``. Ordinal and
    categorical: the two shares of each level side by side, one row per level.
    """
    import pygal  # only a drifted feature needs it

    common = {
        "width": 480,
        "height": 240,
        "explicit_size": True,
        "js": [],
        "style": _style(),
        "disable_xml_declaration": True,
        "legend_at_bottom": True,
        # The measure(s) past their minimum: why this feature is drawn at all.
        "title": f"{feature.name}: " + ", ".join(c.describe() for c in result.crossings(feature)),
        "margin": 8,
        "max_scale": 6,
    }
    if feature.kind == "numeric":
        reference = np.asarray(reference_profile["features"][feature.name]["values"], float)
        now = Sample.of(current[feature.name].to_numpy(float))
        bins = _bins(np.concatenate([reference, now.values]))
        chart = pygal.Histogram(**common, y_title="density")
        for label, values, weights in (
            ("reference", reference, None),
            ("current", now.values, now.counts),
        ):
            density, _ = np.histogram(values, bins=bins, weights=weights, density=True)
            bars = zip(density.tolist(), bins[:-1].tolist(), bins[1:].tolist(), strict=True)
            chart.add(label, list(bars))  # (height, start, end) per bin
    else:
        levels = list(feature.reference)[::-1]  # pygal draws the first row at the bottom
        common["height"] = max(240, 110 + 28 * len(levels))  # level names read across
        chart = pygal.HorizontalBar(
            **common, x_labels=levels, x_title="share", value_formatter=lambda share: f"{share:.0%}"
        )
        chart.add("reference", [feature.reference[lv] for lv in levels])
        chart.add("current", [feature.current[lv] for lv in levels])
    encoded = base64.b64encode(chart.render(is_unicode=True).encode()).decode("ascii")
    alt = html.escape(f"{feature.name}: reference vs current", quote=True)
    caption = html.escape(f"{feature.name}: {result.why(feature)}")
    return (
        f'<figure><img src="data:image/svg+xml;base64,{encoded}" alt="{alt}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _bins(values: np.ndarray) -> np.ndarray:
    # One bar per whole number when the range is short: 30 equal bins over 0..37 would alias.
    low, high = values.min(), values.max()
    if high - low <= 60 and np.array_equal(values, np.rint(values)):
        return np.arange(low - 0.5, high + 1.5)
    return np.histogram_bin_edges(values, bins=30)


def _change(feature: FeatureDrift) -> str:
    """Mean before and after (numeric), or the level whose share moved most."""
    if feature.kind == "numeric":
        return f"mean {feature.reference['mean']:.4g} → {feature.current['mean']:.4g}"
    level = max(feature.reference, key=lambda lv: abs(feature.current[lv] - feature.reference[lv]))
    return f"{level}: {feature.reference[level]:.1%} → {feature.current[level]:.1%}"


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–" if value is None or math.isnan(value) else "∞"
    return f"{value:.4g}"


def _p(value: float) -> str:
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)
