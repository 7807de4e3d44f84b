"""Compare runs, sweep points and measured sessions: metrics per replication,
means with Student-t confidence intervals, empirical CDFs.

The metrics are those of the run summary (:data:`dialsim.results.summary.METRICS`,
docs/results.md): computed once per replication, so that replications, which
are independent, are the unit the confidence interval is taken over.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dialsim.analysis.load import Results
from dialsim.results.stats import mean_confidence_interval
from dialsim.results.summary import METRICS, per_replication_metrics

__all__ = ["METRICS", "cdf", "compare", "replication_metrics"]


def _unretrieved(results: Results, run: str, point: int) -> dict[int, int] | None:
    """The replications that left mail at the ISP, where the folder says."""
    summary = results.summaries.get(run, {})
    left = summary.get("messages_unretrieved_per_replication")
    for p in summary.get("points", []):
        if int(p.get("point", -1)) == point:
            left = p.get("messages_unretrieved_per_replication")
    return {int(k): int(v) for k, v in left.items()} if left is not None else None


def replication_metrics(results: Results) -> pd.DataFrame:
    """One row per run, point and replication: the key columns, ``replication``
    and one column per summary metric (seconds, octets, B/s or counts, as
    their names say: ``time_to_retrieve_all_s``, ``goodput_Bps``, ...).

    >>> m = replication_metrics(load(SWEEP))
    >>> m[["point", "link.compression", "replication", "messages_retrieved"]].to_string(index=False)
    ' point link.compression  replication  messages_retrieved\\n     0             True            0                 6.0\\n     0             True            1                 6.0\\n     1            False            0                 6.0\\n     1            False            1                 6.0'
    """
    rows = []
    for _, point in results.points.iterrows():
        run, number = point["run"], int(point["point"])

        def of_point(df: pd.DataFrame, run=run, number=number) -> pd.DataFrame:
            return df[(df["run"] == run) & (df["point"] == number)]

        tables = {name: of_point(results[name]) for name in ("sessions", "commands", "messages")}
        reps = sorted(set(tables["sessions"]["replication"].tolist()))
        per = per_replication_metrics(tables, reps, _unretrieved(results, run, number))
        for k in reversed(results.keys):
            per.insert(0, k, [point[k]] * len(per))
        rows.append(per)
    if not rows:
        return pd.DataFrame(columns=[*results.keys, "replication", *METRICS])
    out = pd.concat(rows, ignore_index=True)
    return out.astype({k: results.points[k].dtype for k in results.keys})


def compare(frame: pd.DataFrame, metrics: str | Sequence[str], by: str | Sequence[str],
            confidence: float = 0.95) -> pd.DataFrame:
    """The mean of each metric per group with its confidence interval over the
    group's rows (Student t, ``n - 1`` degrees of freedom): columns ``by``...,
    ``metric``, ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high`` (in the
    metric's unit).  With one row in a group the interval is NaN.

    >>> m = replication_metrics(load(SWEEP))
    >>> c = compare(m, "goodput_Bps", by="link.compression")
    >>> list(c.columns)
    ['link.compression', 'metric', 'n', 'mean', 'std', 'ci_low', 'ci_high']
    >>> bool(((c.ci_low <= c["mean"]) & (c["mean"] <= c.ci_high)).all())
    True
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for group, part in frame.groupby(by, observed=True, sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        for metric in metrics:
            values = part[metric].to_numpy(dtype=float)
            mean, low, high, n = mean_confidence_interval(values, confidence)
            finite = values[np.isfinite(values)]
            std = float(np.std(finite, ddof=1)) if len(finite) > 1 else np.nan
            rows.append((*group, metric, n, mean, std, low, high))
    out = pd.DataFrame(rows, columns=[*by, "metric", "n", "mean", "std", "ci_low", "ci_high"])
    for col in by:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            out[col] = pd.Categorical(out[col], dtype=frame[col].dtype)
    return out


def cdf(frame: pd.DataFrame, column: str, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """The empirical CDF of ``column`` (per group of ``by``): the sorted values in
    ``column`` and ``p``, the fraction of the group's values at or below each.

    >>> c = cdf(command_latency(load(RESULTS).commands), "duration_s", by="verb")
    >>> list(c.columns)
    ['verb', 'duration_s', 'p']
    >>> float(c[c.verb == "RETR"].p.max())
    1.0
    """
    groups = [((), frame)] if by is None else frame.groupby(by, observed=True, sort=True)
    by = [] if by is None else [by] if isinstance(by, str) else list(by)
    parts = []
    for group, part in groups:
        values = np.sort(part[column].to_numpy(dtype=float))
        values = values[np.isfinite(values)]
        out = pd.DataFrame({column: values, "p": np.arange(1, len(values) + 1) / max(1, len(values))})
        group = group if isinstance(group, tuple) else (group,)
        for i, col in enumerate(by):
            out.insert(i, col, group[i])
        parts.append(out)
    if not parts:
        return pd.DataFrame(columns=[*by, column, "p"])
    return pd.concat(parts, ignore_index=True)
