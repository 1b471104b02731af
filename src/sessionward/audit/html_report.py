"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched),
with the findings, the entropy of every bit position, effective entropy by significance level,
and the timeout checks. Every chart has its numbers in a table next to it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from sessionward.audit.findings import Finding, Severity
from sessionward.audit.runner import Report

__all__ = ["to_html"]

_COLOURS = {
    Severity.CRITICAL: "#8b0000",
    Severity.HIGH: "#b42318",
    Severity.MEDIUM: "#9a5b00",
    Severity.LOW: "#1d4ed8",
    Severity.INFO: "#4b5563",
}
_PASS, _FAIL, _AXIS = "#15803d", "#b42318", "#374151"
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem;color:#111}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:0 .5rem;border-radius:.3rem;color:#fff;font-weight:600;
font-size:.85rem;text-transform:uppercase}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}
.finding{border:1px solid #ddd;border-left:6px solid var(--c);padding:.5rem 1rem;margin:.8rem 0}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.85rem;white-space:pre-wrap}
.muted{color:#555}svg{max-width:100%;height:auto;background:#fff}
"""


def to_html(report: Report) -> str:
    data = report.as_json()
    sections = [
        _summary(report, data),
        _findings(report.findings),
        _entropy(report.data.get("harvest")),
        _timeouts(report.data.get("timeouts")),
        _notes(report),
    ]
    title = f"sessionward audit of {escape(report.target)}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>{''.join(s for s in sections if s)}</body></html>\n"
    )


def _badge(severity: Severity) -> str:
    return f'<span class="badge" style="background:{_COLOURS[severity]}">{severity.label}</span>'


def _summary(report: Report, data: dict[str, Any]) -> str:
    counts = "".join(
        f"<tr><td>{_badge(Severity[label.upper()])}</td><td>{n}</td></tr>"
        for label, n in report.counts().items()
    )
    return (
        f'<p class="muted">Scenario {escape(report.scenario)}; {data["started"]} to'
        f" {data['finished']}; {report.requests} requests; probes:"
        f" {escape(', '.join(report.probes))}.</p>"
        f'<table style="width:auto"><caption>Findings by severity</caption>{counts}</table>'
    )


def _findings(findings: Sequence[Finding]) -> str:
    items = []
    for f in findings:
        evidence = json.dumps(f.evidence, indent=2, ensure_ascii=False)
        refs = ", ".join([*(f"ASVS 5.0 {r}" for r in f.rule.asvs), *f.rule.wstg])
        items.append(
            f'<div class="finding" style="--c:{_COLOURS[f.severity]}" id="{escape(f.id)}">'
            f"<h3>{_badge(f.severity)} {escape(f.rule.title)}"
            f' <code class="muted">{escape(f.id)}</code></h3>'
            f"<p>{escape(f.detail)}</p>"
            + (f'<p class="muted">At {escape(f.url)}</p>' if f.url else "")
            + f"<p><strong>References:</strong> {escape(refs)}</p>"
            f"<p><strong>Fix:</strong> {escape(f.rule.remediation)}</p>"
            + (f"<details><summary>Evidence</summary><pre>{escape(evidence)}</pre></details>"
               if f.evidence else "")
            + "</div>"
        )  # fmt: skip
    return "<h2>Findings</h2>" + ("".join(items) or "<p>No findings.</p>")


def _entropy(harvest: dict[str, Any] | None) -> str:
    if not harvest or not harvest.get("bit_p_values"):
        return ""
    p_values: list[float] = harvest["bit_p_values"]
    levels = harvest["entropy_by_significance"]
    fips = harvest.get("fips_140_2")
    fips_text = ""
    if fips:
        verdict = "pass" if fips["passed"] else "fail"
        fips_text = (
            f" FIPS 140-2 per position ({fips['intervals']} runs intervals): {verdict},"
            f" {fips['failing_positions']} failing positions, chance explains"
            f" {fips['allowed_failures']}."
        )
    rows = "".join(
        f"<tr><td>{lv['level'] * 100:g} %</td><td>{lv['bits']}</td></tr>" for lv in levels
    )
    return (
        "<h2>Token randomness</h2>"
        f"<p>{harvest['samples']} tokens ({escape(str(harvest['shape']['encoding']))}),"
        f" {harvest['analysed_bits']} variable bits; estimated effective entropy"
        f" <strong>{harvest['effective_bits']} bits</strong>; verdict"
        f" <strong>{escape(harvest['verdict'])}</strong>.{escape(fips_text)} Passing these"
        " tests does not prove the tokens unpredictable.</p>"
        + _bit_chart(p_values)
        + _level_chart(levels)
        + "<details><summary>Effective entropy by significance level (table)</summary>"
        f"<table><tr><th>Level</th><th>Bits passing</th></tr>{rows}</table></details>"
    )


def _bit_chart(p_values: Sequence[float]) -> str:
    """One bar per bit position: -log10 of its smallest p-value (taller = more suspicious),
    with the 1 % line."""
    width, height, left, bottom = 900, 220, 40, 30
    n = len(p_values)
    step = (width - left - 10) / max(n, 1)
    top = 8.0
    bars = []
    for i, p in enumerate(p_values):
        score = min(top, -math.log10(max(p, 1e-300)))
        h = (height - bottom - 10) * score / top
        colour = _FAIL if p < 0.01 else _PASS
        bars.append(
            f'<rect x="{left + i * step:.2f}" y="{height - bottom - h:.2f}"'
            f' width="{max(step * 0.8, 0.5):.2f}" height="{max(h, 0.5):.2f}" fill="{colour}">'
            f"<title>bit {i}: p = {p:.3g}</title></rect>"
        )
    line_y = height - bottom - (height - bottom - 10) * 2 / top
    return (
        f'<figure><svg viewBox="0 0 {width} {height}" role="img"'
        ' aria-label="Smallest p-value per bit position">'
        + "".join(bars)
        + f'<line x1="{left}" x2="{width - 10}" y1="{line_y:.1f}" y2="{line_y:.1f}"'
        f' stroke="{_AXIS}" stroke-dasharray="4 3"/>'
        f'<text x="{width - 12}" y="{line_y - 4:.1f}" text-anchor="end" font-size="11">1 %</text>'
        f'<line x1="{left}" x2="{left}" y1="10" y2="{height - bottom}" stroke="{_AXIS}"/>'
        f'<line x1="{left}" x2="{width - 10}" y1="{height - bottom}" y2="{height - bottom}"'
        f' stroke="{_AXIS}"/>'
        f'<text x="{left - 4}" y="16" text-anchor="end" font-size="11">8</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>'
        f'<text x="{left}" y="{height - 8}" font-size="11">bit 0</text>'
        f'<text x="{width - 10}" y="{height - 8}" text-anchor="end" font-size="11">'
        f"bit {n - 1}</text></svg><figcaption>Entropy per bit position: -log10 of each"
        " bit's smallest p-value (monobit, runs, poker, long run, correlation). Green bits"
        " pass at 1 %; a few red ones are expected by chance.</figcaption></figure>"
    )


def _level_chart(levels: Sequence[dict[str, Any]]) -> str:
    width, height, left, bottom = 520, 200, 50, 40
    top = max((lv["bits"] for lv in levels), default=1) or 1
    step = (width - left - 10) / max(len(levels), 1)
    bars = []
    for i, lv in enumerate(levels):
        h = (height - bottom - 20) * lv["bits"] / top
        x = left + i * step
        bars.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{height - bottom - h:.1f}"'
            f' width="{step * 0.7:.1f}" height="{max(h, 0.5):.1f}" fill="{_PASS}"/>'
            f'<text x="{x + step / 2:.1f}" y="{height - bottom - h - 4:.1f}" font-size="11"'
            f' text-anchor="middle">{lv["bits"]}</text>'
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 16:.1f}" font-size="11"'
            f' text-anchor="middle">{lv["level"] * 100:g} %</text>'
        )
    return (
        f'<figure><svg viewBox="0 0 {width} {height}" width="{width}" role="img"'
        ' aria-label="Effective entropy by significance level">'
        + "".join(bars)
        + f'<line x1="{left}" x2="{width - 10}" y1="{height - bottom}" y2="{height - bottom}"'
        f' stroke="{_AXIS}"/></svg><figcaption>Effective entropy (bits passing every test)'
        " at each significance level.</figcaption></figure>"
    )


def _timeouts(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    max_wait = float(data["max_wait"]) or 1.0
    width, left = 900, 110
    rows = [("idle", data["idle_checks"]), ("kept active", data["keepalive_checks"])]
    marks = []
    for row, (label, checks) in enumerate(rows):
        y = 30 + row * 40
        marks.append(f'<text x="4" y="{y + 4}" font-size="12">{escape(label)}</text>')
        for check in checks:
            x = left + (width - left - 20) * min(1.0, check["after"] / max_wait)
            colour = _PASS if check["alive"] else _FAIL
            state = "alive" if check["alive"] else "ended"
            marks.append(
                f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}">'
                f"<title>{label}: {state} after {check['after']} s</title></circle>"
            )
    table = "".join(
        f"<tr><td>{escape(label)}</td><td>{c['after']}</td>"
        f"<td>{'alive' if c['alive'] else 'ended'}</td></tr>"
        for label, checks in rows
        for c in checks
    )
    return (
        "<h2>Timeouts</h2>"
        f'<figure><svg viewBox="0 0 {width} 110" role="img" aria-label="Timeout checks">'
        + "".join(marks)
        + f'<line x1="{left}" x2="{width - 20}" y1="95" y2="95" stroke="{_AXIS}"/>'
        f'<text x="{left}" y="108" font-size="11">0 s</text>'
        f'<text x="{width - 20}" y="108" font-size="11" text-anchor="end">{max_wait:g} s</text>'
        "</svg><figcaption>Each dot is one check of a session after that many seconds: green"
        " still signed in, red ended. Idle sessions are checked once each; the active one"
        f" every {data['keepalive_interval']} s.</figcaption></figure>"
        "<details><summary>Timeout checks (table)</summary><table><tr><th>Session</th>"
        f"<th>Seconds</th><th>State</th></tr>{table}</table></details>"
    )


def _notes(report: Report) -> str:
    if not report.notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return f"<h2>Notes</h2><ul>{items}</ul>"
