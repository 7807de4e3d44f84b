"""``dialsim report DIR --html``: one self-contained HTML page about a results folder.

The page has the summary (means with 95% confidence intervals), the phase
breakdown, the command timeline and time per command, goodput over time
(when the run wrote a line capture, ``--pcap``) and, for a sweep, the
comparison of its points.  Plots are PNG images embedded as ``data:`` URIs
and the style sheet is inline: the page loads nothing from anywhere, runs no
script, and can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from matplotlib.figure import Figure

from dialsim.analysis.capture import goodput, read_capture
from dialsim.analysis.compare import compare, replication_metrics
from dialsim.analysis.load import Results, load
from dialsim.analysis.plots import (
    plot_command_latency,
    plot_command_timeline,
    plot_comparison,
    plot_goodput,
    plot_phases,
)
from dialsim.analysis.timings import PHASE_NAMES, phases
from dialsim.results.summary import METRICS

__all__ = ["html_report", "write_html_report"]

# the sweep comparison's metrics
COMPARED = ("time_to_retrieve_all_s", "goodput_Bps", "messages_duplicated", "connect_time_s")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; } .note { color: #666; }
"""


def _png(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(value, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    text = f"{value:,.2f}" if abs(value) < 1e5 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def _table(head: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    out = ["<table><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        cells = (f'<td class="n">{html.escape(c)}</td>' if i >= numeric_from
                 else f"<td>{html.escape(c)}</td>" for i, c in enumerate(row))
        out += ["<tr>", *cells, "</tr>"]
    return "".join(out) + "</table>"


def _summary_table(metrics: dict) -> str:
    rows = []
    for name, (unit, label) in METRICS.items():
        st = metrics.get(name) or {}
        low, high = st.get("ci95_low"), st.get("ci95_high")
        ci = "-" if low is None or high is None else f"{_num(low)} .. {_num(high)}"
        rows.append([label, unit or "count", _num(st.get("mean")), ci, _num(st.get("median")),
                     _num(st.get("p95")), str(st.get("n", 0))])
    return _table(["metric", "unit", "mean", "95% CI of the mean", "median", "p95", "n"], rows,
                  numeric_from=2)


def _phase_table(r: Results) -> str:
    p = phases(r.sessions)
    by = [*r.varied] if r.varied else ["run"]
    per_call = p.groupby([*by, "replication", "session", "phase"], observed=True, dropna=False)[
        "duration_s"].sum().unstack("phase").reindex(columns=PHASE_NAMES).fillna(0.0)
    mean = per_call.groupby(level=list(range(len(by))), observed=True, dropna=False).mean()
    rows = [[", ".join(map(str, idx if isinstance(idx, tuple) else (idx,))),
             *(_num(v, "s") for v in row)] for idx, row in mean.iterrows()]
    return _table([", ".join(by), *PHASE_NAMES], rows)


def _goodput_section(r: Results) -> str:
    if not len(r.captures):
        return ('<p class="note">No line capture in this folder: run with '
                "<code>dialsim run --pcap</code> for goodput over time.</p>")
    cap = r.captures.iloc[0]
    rates = goodput(read_capture(cap["path"]), bin_s=1.0)
    cmds = r.commands[(r.commands["run"] == cap["run"])
                      & (r.commands["replication"] == cap["replication"])]
    return (f"<p>Replication {cap['replication']}, from {html.escape(Path(cap['path']).name)}; "
            "RETR commands shaded.</p>"
            + _png(plot_goodput(rates, commands=cmds), "goodput over time"))


def _sweep_section(r: Results) -> str:
    m = replication_metrics(r)
    c = compare(m, list(COMPARED), by=r.varied)
    hue = r.varied[1] if len(r.varied) > 1 else None
    parts = ["<h2>Comparison of the sweep's points</h2>",
             f"<p>Means over replications with 95% confidence intervals (Student t); "
             f"varied: {html.escape(', '.join(r.varied))}.</p>"]
    for metric in COMPARED:
        part = c[c["metric"] == metric]
        if part["n"].sum() == 0:
            continue
        parts.append(_png(plot_comparison(part, x=r.varied[0], hue=hue), f"comparison of {metric}"))
    rows = [[", ".join(str(row[k]) for k in r.varied), row["metric"], str(row["n"]),
             _num(row["mean"]), f"{_num(row['ci_low'])} .. {_num(row['ci_high'])}"]
            for _, row in c.iterrows()]
    parts.append(_table([", ".join(r.varied), "metric", "n", "mean", "95% CI"], rows, numeric_from=2))
    return "".join(parts)


def html_report(folder: str | Path) -> str:
    """The report page of one results folder (run, sweep or measured session), as text.

    >>> page = html_report(SWEEP)
    >>> page.startswith("<!DOCTYPE html>"), "Comparison of the sweep" in page
    (True, True)
    >>> "http://" in page or "https://" in page or "<script" in page
    False
    """
    folder = Path(folder)
    r = load(folder)
    run = r.points["run"].iloc[0]
    summary, meta = r.summaries.get(run, {}), r.meta.get(run, {})
    scenario = r.points["scenario"].iloc[0]
    kind = "sweep" if r.varied else "measured session" if meta.get("measured") else "simulated run"
    reps = int(r.points["replications"].max()) if len(r.points) else 0
    head = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>dialsim report: {html.escape(scenario)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>dialsim report: {html.escape(scenario)}</h1>"
            f"<p>{html.escape(kind)} in <code>{html.escape(folder.name)}</code>: "
            f"{len(r.points)} point(s), {reps} replication(s) each, "
            f"dialsim {html.escape(str(meta.get('dialsim_version', '?')))}.</p>")
    body = [head, "<h2>Summary</h2>"]
    if r.varied:
        body.append(_sweep_section(r))
    else:
        body.append(_summary_table(summary.get("metrics", {})))
        lost = summary.get("messages_lost")
        body.append(f"<p>Messages lost: {'unknown' if lost is None else lost}; "
                    f"retrieved again: {summary.get('messages_duplicated', 0)}.</p>")
    by = r.varied or None
    body += ["<h2>Phase breakdown</h2>", _phase_table(r),
             _png(plot_phases(r.sessions, by=by), "time per phase")]
    first = r.commands[(r.commands["run"] == run) & (r.commands["point"] == 0)]
    body += ["<h2>Commands</h2>", "<p>Replication 0 (of point 0), every call.</p>",
             _png(plot_command_timeline(first, replication=0), "command timeline"),
             _png(plot_command_latency(r.commands, by=r.varied[0] if r.varied else None),
                  "time per command")]
    body += ["<h2>Goodput over time</h2>", _goodput_section(r), "</body></html>"]
    return "".join(body)


def write_html_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write :func:`html_report` of ``folder`` to ``out`` (default
    ``folder/report.html``); returns the path.

    >>> path = write_html_report(RESULTS, TMP / "report.html")
    >>> path.name, path.stat().st_size > 10_000
    ('report.html', True)
    """
    out = Path(out) if out is not None else Path(folder) / "report.html"
    out.write_text(html_report(folder), encoding="utf-8")
    return out
