"""The offered-load plot as a self-contained SVG (no plotting library): two
panels sharing the x axis (offered load, Mpps) — received throughput, and
latency percentiles on a log scale — for mplb and testpmd."""

import math
from xml.sax.saxutils import escape

W, H = 920, 420
PANEL_W, PANEL_H = 360, 280
MARGIN_L, MARGIN_T = 70, 80
GAP = 100

COLORS = {"mplb": "#c0392b", "testpmd": "#2471a3"}
DASH = {"p50": "", "p99": "6,4", "p999": "2,3"}


def _nice_ticks(lo, hi, n=5):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _us_label(us):
    """A latency tick (in µs) in the unit that reads best."""
    for unit, scale in (("s", 1e6), ("ms", 1e3)):
        if us >= scale:
            return f"{us / scale:g} {unit}"
    return f"{us:g} µs"


class Panel:
    def __init__(self, x0, y0, xmax, ymin, ymax, log_y, title, ylabel):
        self.x0, self.y0 = x0, y0
        self.xmax = xmax
        self.ymin, self.ymax = ymin, ymax
        self.log_y = log_y
        self.title, self.ylabel = title, ylabel

    def px(self, x):
        return self.x0 + PANEL_W * x / self.xmax

    def py(self, y):
        if self.log_y:
            lo, hi = math.log10(self.ymin), math.log10(self.ymax)
            f = (math.log10(max(y, self.ymin)) - lo) / (hi - lo)
        else:
            f = (y - self.ymin) / (self.ymax - self.ymin)
        return self.y0 + PANEL_H * (1 - f)

    def frame(self, out):
        out.append(
            f'<rect x="{self.x0}" y="{self.y0}" width="{PANEL_W}" height="{PANEL_H}" '
            'fill="none" stroke="#444"/>'
        )
        for t in _nice_ticks(0, self.xmax):
            if t > self.xmax:
                continue
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{self.y0 + PANEL_H}" x2="{x:.1f}" y2="{self.y0 + PANEL_H + 5}" stroke="#444"/>')
            out.append(f'<text x="{x:.1f}" y="{self.y0 + PANEL_H + 18}" text-anchor="middle">{t:g}</text>')
        if self.log_y:
            yt = [10**e for e in range(math.floor(math.log10(self.ymin)), math.ceil(math.log10(self.ymax)) + 1)]
        else:
            yt = _nice_ticks(self.ymin, self.ymax)
        for t in yt:
            if not (self.ymin <= t <= self.ymax * 1.0001):
                continue
            y = self.py(t)
            out.append(f'<line x1="{self.x0}" y1="{y:.1f}" x2="{self.x0 + PANEL_W}" y2="{y:.1f}" stroke="#ddd"/>')
            label = _us_label(t) if self.log_y else f"{t:g}"
            out.append(f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        out.append(f'<text x="{self.x0 + PANEL_W / 2}" y="{self.y0 - 10}" text-anchor="middle" font-weight="bold">{escape(self.title)}</text>')
        out.append(f'<text x="{self.x0 + PANEL_W / 2}" y="{self.y0 + PANEL_H + 36}" text-anchor="middle">offered load (Mpps)</text>')
        cy = self.y0 + PANEL_H / 2
        out.append(f'<text x="{self.x0 - 48}" y="{cy}" text-anchor="middle" transform="rotate(-90 {self.x0 - 48} {cy})">{escape(self.ylabel)}</text>')

    def line(self, out, pts, color, dash="", marker=True):
        pts = [(x, y) for x, y in pts if x is not None and y is not None]
        if not pts:
            return
        d = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
        if marker:
            for x, y in pts:
                out.append(f'<circle cx="{self.px(x):.1f}" cy="{self.py(y):.1f}" r="3" fill="{color}"/>')


def sweep_svg(sweep, subtitle=""):
    """`sweep`: the dict scenarios.sweep returns."""
    pts = sweep["points"]
    offered = [p["offered_pps"] / 1e6 for p in pts]
    xmax = max(offered + [0.001]) * 1.05
    rx = [
        p[d]["rx_pps"] / 1e6 for p in pts for d in ("mplb", "testpmd") if p[d]["rx_pps"] is not None
    ]
    ymax = max(rx + offered + [0.001]) * 1.1
    lats = [
        p[d][q] / 1e3
        for p in pts
        for d in ("mplb", "testpmd")
        for q in ("p50", "p99", "p999")
        if p[d][q]
    ]
    lmin = 10 ** math.floor(math.log10(min(lats))) if lats else 0.1
    lmax = 10 ** math.ceil(math.log10(max(lats))) if lats else 1000
    if lmax <= lmin:
        lmax = lmin * 10
    thr = Panel(MARGIN_L, MARGIN_T, xmax, 0, ymax, False, "Throughput", "received (Mpps)")
    lat = Panel(MARGIN_L + PANEL_W + GAP, MARGIN_T, xmax, lmin, lmax, True, "Latency (log scale)", "latency")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 40}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H + 40}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        f'mplb and testpmd macswap against offered load — {escape(sweep["mix"])}, {sweep["flows"]} flows</text>',
        f'<text x="{W / 2}" y="40" text-anchor="middle" fill="#555">{escape(subtitle)}</text>',
    ]
    thr.frame(out)
    lat.frame(out)
    thr.line(out, [(0, 0), (xmax, xmax)], "#999", "3,3", marker=False)
    for d in ("testpmd", "mplb"):
        thr.line(out, [(o, p[d]["rx_pps"] / 1e6 if p[d]["rx_pps"] is not None else None) for o, p in zip(offered, pts)], COLORS[d])
        for q in ("p50", "p99", "p999"):
            lat.line(out, [(o, p[d][q] / 1e3 if p[d][q] else None) for o, p in zip(offered, pts)], COLORS[d], DASH[q])
    # Legend.
    ly = MARGIN_T + PANEL_H + 62
    x = MARGIN_L
    for d in ("mplb", "testpmd"):
        out.append(f'<line x1="{x}" y1="{ly}" x2="{x + 24}" y2="{ly}" stroke="{COLORS[d]}" stroke-width="2"/>')
        out.append(f'<text x="{x + 30}" y="{ly + 4}">{d}</text>')
        x += 110
    for q, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
        dash = f' stroke-dasharray="{DASH[q]}"' if DASH[q] else ""
        out.append(f'<line x1="{x}" y1="{ly}" x2="{x + 24}" y2="{ly}" stroke="#333" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x + 30}" y="{ly + 4}">{name} latency</text>')
        x += 130
    out.append(f'<line x1="{x}" y1="{ly}" x2="{x + 24}" y2="{ly}" stroke="#999" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x + 30}" y="{ly + 4}">received = offered</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
