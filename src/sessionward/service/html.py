"""Server-rendered HTML for the admin page and the demo shop: escaping, one layout, one chart.

No template engine and no front-end build: pages are f-strings of escaped values. Every page
has landmarks (header, nav, main), a skip link, labelled form fields and colours with at least
4.5:1 contrast. Responses carry a strict Content-Security-Policy; the few inline scripts run
under a per-response nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from starlette.responses import HTMLResponse

__all__ = ["Page", "attr", "chart_svg", "esc", "fmt_time", "hidden_csrf"]


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def attr(value: object) -> str:
    return '"' + esc(value) + '"'


def fmt_time(value: float | None) -> str:
    if value is None:
        return "—"
    try:
        moment = datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError, TypeError):  # out of datetime's range
        return "—"
    return (
        f'<time datetime="{moment.isoformat(timespec="seconds")}">'
        f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC</time>"
    )


def hidden_csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf_token" value={attr(token)}>'


_STYLE = """
:root{color-scheme:light;--ink:#1b1b1f;--muted:#4a4a55;--accent:#0b5cad;--bad:#a4161a;
--ok:#1e6b2f;--line:#c9cbd3;--bg:#ffffff;--panel:#f3f4f7}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
background:var(--bg)}
a{color:var(--accent)}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
header{background:#14213d;color:#fff;padding:.75rem 1.25rem;display:flex;flex-wrap:wrap;
gap:1rem;align-items:center;justify-content:space-between}
header a{color:#fff}
header .brand{font-weight:700;font-size:1.1rem;text-decoration:none}
nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0;flex-wrap:wrap;align-items:center}
main{max-width:64rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.6rem;margin:.25rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:1rem;
margin:0 0 1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.75rem}
.stat{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.75rem}
.stat .n{font-size:1.6rem;font-weight:700;display:block}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
label.inline{display:inline;font-weight:400}
input[type=text],input[type=password],input[type=search]{font:inherit;padding:.45rem;
border:1px solid #6b6e78;border-radius:4px;width:100%;max-width:22rem}
button{font:inherit;padding:.45rem .9rem;border-radius:4px;border:1px solid var(--accent);
background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
form.inline{display:inline}
.muted{color:var(--muted)}
.msg{padding:.6rem .8rem;border-radius:4px;border:1px solid var(--line);background:#eef6ee}
.error{background:#fbeaea;border-color:var(--bad);color:var(--bad)}
.tag{display:inline-block;padding:0 .4rem;border-radius:3px;background:#e3e8f4;
font-size:.85rem}
.feed{max-height:22rem;overflow:auto;padding-left:1.25rem}
.products{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem;
list-style:none;padding:0}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);
white-space:nowrap}
code{background:var(--panel);padding:0 .25rem;border-radius:3px}
header nav{margin-left:auto}
header form.inline button.secondary{background:transparent;color:#fff;border-color:#fff}
.feed{list-style:none;padding-left:0}.feed li{padding:.2rem 0;border-bottom:1px solid var(--line)}
.table-wrap{overflow-x:auto;max-width:100%}
td span[title]{display:inline-block;max-width:16rem;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap;vertical-align:bottom}
.ua{display:block;font-size:.85rem;color:var(--muted);overflow-wrap:anywhere;max-width:28rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}
.filters div{flex:1 1 12rem}.filters .actions{flex:0 0 auto}
select{font:inherit;padding:.4rem;border:1px solid #6b6e78;border-radius:4px;background:#fff}
th a{color:inherit}
.pager{display:flex;gap:1rem;align-items:center;margin:1rem 0}
a.danger-link{color:var(--bad);font-weight:600}
td.actions{white-space:nowrap}
.confirm{border-color:var(--bad)}
.qr-box{margin:.5rem 0}.qr-box svg{width:12rem;height:12rem;display:block}
.qr-box figcaption{margin-top:.25rem;overflow-wrap:anywhere}
"""


class Page:
    """One HTML page: title, navigation, body; rendered with security headers."""

    def __init__(
        self,
        title: str,
        brand: str,
        home: str,
        nav: Sequence[str] = (),
        *,
        script_files: Sequence[str] = (),
    ) -> None:
        self.title, self.brand, self.home, self.nav = title, brand, home, nav
        self.script_files = script_files  # same-origin script paths, loaded with the nonce
        self.nonce = secrets.token_urlsafe(16)

    def response(
        self, body: str, *, status: int = 200, scripts: Iterable[str] = ()
    ) -> HTMLResponse:
        nav = "".join(f"<li>{item}</li>" for item in self.nav)
        script = "".join(f'<script nonce="{self.nonce}">{s}</script>' for s in scripts)
        script += "".join(
            f'<script nonce="{self.nonce}" src={attr(path)} defer></script>'
            for path in self.script_files
        )
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)} · {esc(self.brand)}</title>"
            '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
            f'<style nonce="{self.nonce}">{_STYLE}</style></head><body>'
            '<a class="skip" href="#main">Skip to content</a>'
            f'<header><a class="brand" href={attr(self.home)}>{esc(self.brand)}</a>'
            f'<nav aria-label="Main"><ul>{nav}</ul></nav></header>'
            f'<main id="main" tabindex="-1"><h1>{esc(self.title)}</h1>{body}</main>'
            f"{script}</body></html>"
        )
        headers = {
            "content-security-policy": (
                f"default-src 'none'; object-src 'none'; style-src 'nonce-{self.nonce}'; "
                f"script-src 'nonce-{self.nonce}'; connect-src 'self'; img-src 'self' data:; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
            "cache-control": "no-store",
        }
        return HTMLResponse(html, status_code=status, headers=headers)


def chart_svg(
    title: str,
    series: list[tuple[int, dict[str, int]]],
    lines: Sequence[tuple[str, str, str]],
) -> str:
    """A line chart of per-minute counts, with a data table for screen readers.

    ``lines`` are ``(key, label, colour)``. Colours must contrast with white (>= 3:1).
    """
    width, height, pad_left, pad_bottom, pad_top = 640, 200, 40, 28, 10
    top = max([1, *(counts.get(key, 0) for _, counts in series for key, _, _ in lines)])
    inner_w, inner_h = width - pad_left - 10, height - pad_bottom - pad_top
    step = inner_w / max(1, len(series) - 1)
    parts: list[str] = []
    for fraction in (0, 0.5, 1):
        y = pad_top + inner_h * (1 - fraction)
        parts.append(
            f'<line x1="{pad_left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c9cbd3"/>'
            f'<text x="{pad_left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a4a55">{round(top * fraction)}</text>'
        )
    for key, _, colour in lines:
        points = " ".join(
            f"{pad_left + i * step:.1f},{pad_top + inner_h * (1 - counts.get(key, 0) / top):.1f}"
            for i, (_, counts) in enumerate(series)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
    if series:
        first = datetime.fromtimestamp(series[0][0], tz=UTC).strftime("%H:%M")
        last = datetime.fromtimestamp(series[-1][0], tz=UTC).strftime("%H:%M")
        parts.append(
            f'<text x="{pad_left}" y="{height - 8}" font-size="11" fill="#4a4a55">{first}</text>'
            f'<text x="{width - 10}" y="{height - 8}" font-size="11" fill="#4a4a55" '
            f'text-anchor="end">{last} UTC</text>'
        )
    legend = " ".join(
        f'<span><svg width="14" height="4" aria-hidden="true"><rect width="14" height="4" '
        f'fill="{colour}"/></svg> {esc(label)}</span>'
        for _, label, colour in lines
    )
    rows = "".join(
        '<tr><th scope="row">'
        + datetime.fromtimestamp(minute, tz=UTC).strftime("%H:%M")
        + "</th>"
        + "".join(f"<td>{counts.get(key, 0)}</td>" for key, _, _ in lines)
        + "</tr>"
        for minute, counts in series
        if any(counts.values())
    )
    head = "".join(f'<th scope="col">{esc(label)}</th>' for _, label, _ in lines)
    table = (
        f'<table class="sr-only"><caption>{esc(title)}, per minute</caption>'
        f'<tr><th scope="col">Minute (UTC)</th>{head}</tr>{rows}</table>'
    )
    return (
        f'<figure><svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f"aria-label={attr(title + ' over the last ' + str(len(series)) + ' minutes')}>"
        f"{''.join(parts)}</svg><figcaption>{legend}</figcaption></figure>{table}"
    )


def data_attrs(**values: Any) -> str:
    return " ".join(f"data-{k.replace('_', '-')}={attr(v)}" for k, v in values.items())
