"""dialsim.analysis: session timings from results folders, on pandas and matplotlib.

Read the results tables (docs/results.md) of runs, sweeps and measured
sessions, ask where the time and the octets went, compare points with
confidence intervals, and plot the answers.  docs/analysis.md documents every
function, what it returns and in which units.

    from dialsim import analysis as da

    r = da.load(["results/quickstart", "results/quickstart-sweep"])
    da.plot_phases(r.sessions, by="run")
    m = da.replication_metrics(r)
    da.plot_comparison(da.compare(m, "time_to_retrieve_all_s", by="link.profile"),
                       x="link.profile")

Only the tables, ``summary.json``, ``meta.json`` and the line captures are
read: the analysis never runs a simulation.
"""

from dialsim.analysis.capture import goodput, read_capture
from dialsim.analysis.compare import cdf, compare, replication_metrics
from dialsim.analysis.load import Results, load
from dialsim.analysis.plots import (
    axis_label,
    plot_cdf,
    plot_command_latency,
    plot_command_timeline,
    plot_comparison,
    plot_goodput,
    plot_layer_octets,
    plot_phases,
)
from dialsim.analysis.report import html_report, write_html_report
from dialsim.analysis.timings import (
    PHASES,
    command_latency,
    key_columns,
    layer_octets,
    phase_spans,
    phases,
)

__all__ = [
    "PHASES",
    "Results",
    "axis_label",
    "cdf",
    "command_latency",
    "compare",
    "goodput",
    "html_report",
    "key_columns",
    "layer_octets",
    "load",
    "phase_spans",
    "phases",
    "plot_cdf",
    "plot_command_latency",
    "plot_command_timeline",
    "plot_comparison",
    "plot_goodput",
    "plot_layer_octets",
    "plot_phases",
    "read_capture",
    "replication_metrics",
    "write_html_report",
]
