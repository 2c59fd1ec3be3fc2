"""The report as text for a terminal, and as one self-contained HTML page with its charts
drawn in inline SVG (no script, no external file: it can be mailed or archived as is)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from shared.audit.report_doc import Bucket, ReportDoc


def _t(at: datetime | None) -> str:
    return "" if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def _short(value: object) -> str:
    text = "" if value is None else str(value)
    return text[:13] + "…" if len(text) > 14 else text


def _scans(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = ["  " + line, "  " + "  ".join("-" * w for w in widths)]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return out


def text(doc: ReportDoc) -> str:
    filters = ", ".join(f"{k} {v}" for k, v in doc.filters.items()) or "none"
    out = [f"qunma audit report as of {_t(doc.as_of)} UTC (filters: {filters})", ""]
    out.append(f"Codes ({len(doc.codes)})")
    out += _table(
        [
            "code",
            "group",
            "channel",
            "issued",
            "by",
            "status",
            "ended by",
            "reason",
            "scans",
            "joins",
        ],
        [
            [
                _short(c.code_id),
                c.group_name or _short(c.group_id),
                c.channel or "",
                _t(c.issued_at),
                _short(c.issued_by),
                c.status,
                _short(c.ended_by),
                c.reason or "",
                _scans(c.scans),
                str(c.joins),
            ]
            for c in doc.codes
        ],
    )
    out += ["", f"Who issued, changed and ended what ({len(doc.history)})"]
    out += _table(
        ["at", "action", "code", "by", "detail"],
        [[_t(a.at), a.action, _short(a.subject), a.by or "", a.detail] for a in doc.history],
    )
    out += ["", "Scans by outcome"]
    out += [f"  {reason}: {n}" for reason, n in doc.scans_by_reason.items()] or ["  none"]
    out += ["", "Joins by code and channel"]
    out += _table(
        ["code", "channel", "joins"],
        [[_short(j.code_id), j.channel or "", str(j.joins)] for j in doc.joins_by_code_and_channel],
    )
    out += ["", f"Codes valid at {_t(doc.valid_at.instant)}: {len(doc.valid_at.codes)}"]
    out += [f"  {code}" for code in doc.valid_at.codes]
    out += ["", f"Who joined which group through which code ({len(doc.joins)})"]
    out += _table(
        ["group", "user", "person", "code", "channel", "verification", "joined", "left"],
        [
            [
                j.group_name or _short(j.group_id),
                j.user,
                _short(j.person),
                _short(j.code_id or j.live_code_id),
                j.channel or "",
                j.verification,
                _t(j.joined_at),
                _t(j.left_at),
            ]
            for j in doc.joins
        ],
    )
    out += ["", f"People erased on request: {doc.people_erased}"]
    for r in doc.retention:
        out.append(
            f"Retention {_t(r['at'])}: {r['keys_destroyed']} keys of {r['profile']} groups, "
            f"events through {r['through']}"
        )
    if doc.keys == "unavailable":
        out.append("Personal values are [sealed]: the redeemer's person keys were not readable.")
    return "\n".join(out) + "\n"


# -- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;
margin:2em auto;max-width:1100px;color:#1d2433;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #dde2ea}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}
th{background:#f5f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7588}.legend span{margin-right:1.2em}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-1px}
code{font-size:12px}
"""
_COLORS = {"scans": "#3b6fd8", "joins": "#2e9e5b", "rejected": "#d9534f"}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _rows(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _timeline_svg(buckets: list[Bucket], unit: str) -> str:
    if not buckets:
        return '<p class="muted">No scans or joins in this period.</p>'
    width, height, pad = 1000, 260, 40
    top = max(max(b.scans, b.joins) for b in buckets) or 1
    slot = (width - 2 * pad) / len(buckets)
    bar = max(1.0, min(slot / 3 - 1, 24.0))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="scans and joins per {unit}">'
    ]
    for i in range(5):
        y = height - pad - (height - 2 * pad) * i / 4
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef1f5"/>'
            f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#6b7588">{round(top * i / 4)}</text>'
        )
    for i, b in enumerate(buckets):
        x = pad + i * slot
        for j, (kind, value) in enumerate(
            (("scans", b.scans), ("joins", b.joins), ("rejected", b.rejected))
        ):
            h = (height - 2 * pad) * value / top
            parts.append(
                f'<rect x="{x + j * (bar + 1):.1f}" y="{height - pad - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{_COLORS[kind]}"><title>{_e(b.start)}: {value} {kind}'
                "</title></rect>"
            )
    labels = {0, len(buckets) - 1} | set(range(0, len(buckets), max(1, len(buckets) // 8)))
    fmt = "%m-%d" if unit == "day" else "%m-%d %H:00"
    for i in sorted(labels):
        x = pad + i * slot
        parts.append(
            f'<text x="{x:.1f}" y="{height - pad + 16}" font-size="11" fill="#6b7588">'
            f"{buckets[i].start.strftime(fmt)}</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i class="sw" style="background:{c}"></i>{k}</span>' for k, c in _COLORS.items()
    )
    return "".join(parts) + f'<p class="legend">{legend} (per {unit}, UTC)</p>'


def _reasons_svg(reasons: dict[str, int]) -> str:
    rejected = {
        k: v
        for k, v in reasons.items()
        if k not in ("accepted", "already a member", "join requested")
    }
    if not rejected:
        return '<p class="muted">No scan was rejected.</p>'
    width, row = 1000, 26
    top = max(rejected.values())
    height = row * len(rejected) + 10
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img">']
    for i, (reason, n) in enumerate(sorted(rejected.items(), key=lambda kv: -kv[1])):
        y = 5 + i * row
        w = (width - 260) * n / top
        parts.append(
            f'<text x="190" y="{y + 16}" font-size="12" text-anchor="end">{_e(reason)}</text>'
            f'<rect x="200" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#d9534f"/>'
            f'<text x="{206 + w:.1f}" y="{y + 16}" font-size="12">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def page(doc: ReportDoc) -> str:
    filters = ", ".join(f"{k} {v}" for k, v in doc.filters.items()) or "none"
    sections = [
        f"<h1>qunma audit report</h1><p class=muted>As of {_e(_t(doc.as_of))} UTC · filters: "
        f"{_e(filters)} · built from the event logs alone</p>",
        f"<h2>Scans and joins over time</h2>{_timeline_svg(doc.timeline, doc.timeline_unit)}",
        f"<h2>Rejections by reason</h2>{_reasons_svg(doc.scans_by_reason)}",
        "<h2>Scans by outcome</h2>"
        + _rows(["outcome", "scans"], list(doc.scans_by_reason.items()), {1}),
        f"<h2>Codes ({len(doc.codes)})</h2>"
        + _rows(
            [
                "code",
                "group",
                "channel",
                "issued",
                "by",
                "status",
                "ended by",
                "reason",
                "scans",
                "joins",
            ],
            [
                [
                    c.code_id,
                    c.group_name,
                    c.channel,
                    _t(c.issued_at),
                    c.issued_by,
                    c.status,
                    c.ended_by,
                    c.reason,
                    _scans(c.scans),
                    c.joins,
                ]
                for c in doc.codes
            ],
            {9},
        ),
        "<h2>Who issued, changed and ended what</h2>"
        + _rows(
            ["at", "action", "code", "by", "detail"],
            [[_t(a.at), a.action, a.subject, a.by, a.detail] for a in doc.history],
            set(),
        ),
        "<h2>Joins by code and channel</h2>"
        + _rows(
            ["code", "channel", "joins"],
            [[j.code_id, j.channel, j.joins] for j in doc.joins_by_code_and_channel],
            {2},
        ),
        f"<h2>Codes valid at {_e(_t(doc.valid_at.instant))}</h2>"
        + _rows(["code"], [[c] for c in doc.valid_at.codes], set()),
        f"<h2>Who joined which group through which code ({len(doc.joins)})</h2>"
        + _rows(
            ["group", "user", "person", "code", "channel", "verification", "joined", "left"],
            [
                [
                    j.group_name or j.group_id,
                    j.user,
                    j.person,
                    j.code_id or j.live_code_id,
                    j.channel,
                    j.verification,
                    _t(j.joined_at),
                    _t(j.left_at),
                ]
                for j in doc.joins
            ],
            set(),
        ),
        f"<h2>Personal data</h2><p>People erased on request: {doc.people_erased}.</p>"
        + "".join(
            f"<p>Retention {_e(_t(r['at']))}: {r['keys_destroyed']} keys of "
            f"{_e(r['profile'])} groups, events through {_e(r['through'])}.</p>"
            for r in doc.retention
        )
        + (
            "<p class=muted>Personal values are [sealed]: the person keys were not readable.</p>"
            if doc.keys == "unavailable"
            else ""
        ),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>qunma audit report</title><style>{_CSS}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )
