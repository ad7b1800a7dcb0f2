"""One case's timeline as inline SVG: a lane per SMTP session, deliveries as ticks, faults as
markers whose reply shows on hover.

Built to stay small and legible at 1,000 messages: acknowledged deliveries become one histogram
path per lane (a column per few pixels, as tall as its count), and faults and unacknowledged
deliveries are bucketed when there are too many to draw one by one. With more sessions than fit
as lanes, sessions that do not overlap share a lane.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from html import escape

WIDTH = 1150
LABEL_W = 96  # lane labels on the left
RIGHT_W = 190  # close reasons on the right of the last bar
AXIS_H = 26
LANE_H = 44
BAR_H = 10
TICK_W = 3  # width of a delivery histogram column
MAX_LANES = 24  # past this, sessions that do not overlap share a lane
MAX_MARKS = 120  # fault and unacknowledged-delivery markers per case before bucketing


@dataclass
class Lane:
    label: str
    sessions: list[dict] = field(default_factory=list)


def render_timeline(case: dict, *, title_id: str) -> str:
    """The SVG element (a string) for one case's `timeline`; `title_id` must be unique."""
    timeline = case["timeline"]
    end_s = _end_of(case)
    lanes, lane_of = _lanes(timeline["sessions"])
    if any(x["session"] not in lane_of for x in (*timeline["deliveries"], *timeline["faults"])):
        lanes.append(Lane("no session"))  # events the ledger could not tie to a session
    plot_w = WIDTH - LABEL_W - RIGHT_W
    scale = _Scale(end_s, plot_w)
    height = AXIS_H + LANE_H * max(len(lanes), 1) + 6

    def lane_y(session: int) -> float:
        index = lane_of.get(session, len(lanes) - 1)
        return AXIS_H + LANE_H * index + LANE_H / 2

    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-labelledby="{title_id}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">Timeline of {escape(case["scenario"])} x '
        f"{escape(case['strategy'])}: {len(timeline['sessions'])} sessions over "
        f"{_fmt_s(end_s)} of virtual time</title>",
    ]
    parts += _axis(scale, height)
    for index, lane in enumerate(lanes):
        y = AXIS_H + LANE_H * index + LANE_H / 2
        parts += _lane(lane, y, scale, index, packed=len(lane.sessions) > 1)
    parts += _delivery_ticks(timeline["deliveries"], scale, lane_y)
    parts += _unacknowledged(timeline["deliveries"], scale, lane_y)
    parts += _faults(timeline["faults"], scale, lane_y)
    parts.append("</svg>")
    return "\n".join(parts)


class _Scale:
    def __init__(self, end_s: float, plot_w: float) -> None:
        self.end_s = end_s
        self.plot_w = plot_w

    def x(self, at: float) -> float:
        return LABEL_W + min(max(at, 0.0), self.end_s) / self.end_s * self.plot_w

    def column(self, at: float, unit: float = 1.0) -> int:
        return int((self.x(at) - LABEL_W) // unit)


def _end_of(case: dict) -> float:
    timeline = case["timeline"]
    times = [s["opened_at"] for s in timeline["sessions"]]
    times += [s["closed_at"] for s in timeline["sessions"] if s["closed_at"] is not None]
    times += [d["at"] for d in timeline["deliveries"]] + [f["at"] for f in timeline["faults"]]
    if case["score"] is not None:
        times.append(case["score"]["virtual_elapsed_s"])
    end = max(times, default=0.0)
    return end if end > 0 else 1.0


def _lanes(sessions: list[dict]) -> tuple[list[Lane], dict[int, int]]:
    ordered = sorted(sessions, key=lambda s: (s["opened_at"], s["number"]))
    if len(ordered) <= MAX_LANES:
        lanes = [Lane(f"session {s['number']}", [s]) for s in ordered]
    else:
        lanes = []
        ends: list[float] = []
        for session in ordered:
            # First lane free again: keeps concurrent sessions apart, sequential ones together.
            free = next((i for i, e in enumerate(ends) if e <= session["opened_at"]), None)
            if free is None:
                lanes.append(Lane(""))
                ends.append(0.0)
                free = len(lanes) - 1
            lanes[free].sessions.append(session)
            ends[free] = math.inf if session["closed_at"] is None else session["closed_at"]
        for lane in lanes:
            numbers = [s["number"] for s in lane.sessions]
            lane.label = f"{len(numbers)} sessions" if len(numbers) > 1 else f"session {numbers[0]}"
    lane_of = {s["number"]: i for i, lane in enumerate(lanes) for s in lane.sessions}
    return lanes, lane_of


def _axis(scale: _Scale, height: int) -> list[str]:
    # One unit for the whole axis, so labels read 0, 2, 4, 6 min rather than 0 s, 100 s, 3.3 min.
    unit, name = next(
        (u, n) for u, n in ((3600, "h"), (60, "min"), (1, "s")) if scale.end_s >= 2 * u or u == 1
    )
    step = _nice_step(scale.end_s / unit / 8)
    parts = ['<g class="axis">']
    count = int(scale.end_s / unit / step + 1e-9)
    for k in range(count + 1):
        x = scale.x(k * step * unit)
        parts.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height}"/>'
            f'<text x="{x:.1f}" y="{AXIS_H - 10}">{k * step:.6g} {name}</text>'
        )
    parts.append("</g>")
    return parts


def _lane(lane: Lane, y: float, scale: _Scale, index: int, *, packed: bool) -> list[str]:
    stripe = " odd" if index % 2 else ""
    parts = [
        f'<rect class="lane{stripe}" x="0" y="{y - LANE_H / 2:.1f}" width="{WIDTH}" '
        f'height="{LANE_H}"/>',
        f'<text class="lane-label" x="6" y="{y + 4:.1f}">{escape(lane.label)}</text>',
    ]
    for n, session in enumerate(lane.sessions):
        x0 = scale.x(session["opened_at"])
        closed = session["closed_at"]
        x1 = scale.x(scale.end_s if closed is None else closed)
        kind = "open" if closed is None else (session["closed_by"] or "unknown")
        alt = " alt" if packed and n % 2 else ""
        parts.append(
            f'<rect class="bar {kind}{alt}" x="{x0:.1f}" y="{y - BAR_H / 2:.1f}" '
            f'width="{max(x1 - x0, 1.5):.1f}" height="{BAR_H}" rx="2">'
            f"<title>{escape(_session_title(session))}</title></rect>"
        )
    if lane.sessions and not packed:
        last = lane.sessions[-1]
        end_x = scale.x(scale.end_s if last["closed_at"] is None else last["closed_at"])
        parts.append(
            f'<text class="close-reason" x="{end_x + 6:.1f}" y="{y + 4:.1f}">'
            f"{escape(_short_close_label(last))}</text>"
        )
    return parts


def _delivery_ticks(deliveries: list[dict], scale: _Scale, lane_y) -> list[str]:
    """Acknowledged deliveries as a histogram above each bar: one column per TICK_W units,
    as tall as its count (the tallest column in the case is full height), so a steady rate,
    a burst and a stall each read at a glance, and 1,000 deliveries cost a few hundred columns."""
    columns: dict[float, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for delivery in deliveries:
        if delivery["acknowledged"]:
            y = lane_y(delivery["session"])
            columns[y][scale.column(delivery["at"], TICK_W)] += 1
    tallest = max((n for lane in columns.values() for n in lane.values()), default=1)
    parts = []
    for y in sorted(columns):
        path = "".join(
            f"M{LABEL_W + (c + 0.5) * TICK_W:.1f} {y - 6:.1f}v-{1 + 8 * n / tallest:.1f}"
            for c, n in sorted(columns[y].items())
        )
        total = sum(columns[y].values())
        parts.append(
            f'<path class="tick" d="{path}"><title>{total} acknowledged deliveries '
            f"(tallest column: {tallest})</title></path>"
        )
    return parts


def _unacknowledged(deliveries: list[dict], scale: _Scale, lane_y) -> list[str]:
    """drop_after_accept victims: stored by the server, but the client never saw a 250."""
    dropped = [d for d in deliveries if not d["acknowledged"]]
    parts = []
    for y, x, group in _buckets(dropped, scale, lane_y, key=lambda d: ()):
        first = group[0]
        if len(group) == 1:
            label = f"{_fmt_s(first['at'])}: accepted but unacknowledged (no 250 sent): "
            label += first["id"] or "(no Message-ID)"
        else:
            label = f"{len(group)} deliveries accepted but unacknowledged, first {first['id']}"
        parts.append(
            f'<path class="unacked" d="M{x - 4:.1f} {y + 7:.1f}l8 8m0 -8l-8 8">'
            f"<title>{escape(label)}</title></path>"
        )
    return parts


def _faults(faults: list[dict], scale: _Scale, lane_y) -> list[str]:
    parts = []
    buckets = _buckets(
        faults, scale, lane_y, key=lambda f: (f["source"], f["stage"], f["name"], f["reply"])
    )
    for y, x, group in buckets:
        first = group[0]
        where = f"{_fmt_s(first['at'])}" + (f" (x{len(group)})" if len(group) > 1 else "")
        label = f"{where} · {first['stage']} · {first['source']} {first['name']}"
        label += f"\n{first['reply']}" if first["reply"] else "\n(connection dropped, no reply)"
        kind = "limit" if first["source"] == "limit" else "rule"
        parts.append(
            f'<path class="fault {kind}" d="M{x - 5:.1f} {y - 22:.1f}h10l-5 6z">'
            f"<title>{escape(label)}</title></path>"
        )
    return parts


def _buckets(items: list[dict], scale: _Scale, lane_y, key) -> list[tuple[float, float, list]]:
    """Group items drawn at the same spot; widen the spot until there are few enough groups."""
    unit = 1.0
    while True:
        groups: dict[tuple, list[dict]] = {}
        for item in items:
            spot = (lane_y(item["session"]), scale.column(item["at"], unit), *key(item))
            groups.setdefault(spot, []).append(item)
        if len(groups) <= MAX_MARKS or unit >= scale.plot_w:
            break
        unit *= 2
    drawn = []
    for spot, group in groups.items():
        x = LABEL_W + (spot[1] + 0.5) * unit if unit > 1 else scale.x(group[0]["at"])
        drawn.append((spot[0], x, group))
    return drawn


def _session_title(session: dict) -> str:
    closed = session["closed_at"]
    end = "still open" if closed is None else _fmt_s(closed)
    span = f"{_fmt_s(session['opened_at'])} to {end}"
    return f"session {session['number']}: {span}, {_close_label(session)}"


def _close_label(session: dict) -> str:
    if session["closed_at"] is None:
        return "open at end"
    reason = f": {session['close_reason']}" if session["close_reason"] else ""
    return f"closed by {session['closed_by'] or 'unknown'}{reason}"


def _short_close_label(session: dict) -> str:
    if session["closed_at"] is None:
        return "open at end"
    return f"{session['closed_by'] or 'closed'}: {session['close_reason'] or 'no reason'}"


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw`."""
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _fmt_s(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.4g} h"
    if seconds >= 120:
        return f"{seconds / 60:.4g} min"
    return f"{seconds:.4g} s"
