"""Capacity of a modem pool: Erlang B against published tables and the direct
formula, Engset's formula against its definition and Erlang B, the per-line and per-hour tables on hand-made calls, the calling
patterns and trait draws of a population, the POP3 session cap, and the
population keys of the scenario schema."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.experiment.population import CallTimes, draw_traits, member_streams, user_names
from dialsim.hosts.isp import Isp, IspSettings
from dialsim.hosts.network import POP3_PORT
from dialsim.mail.accounts import Accounts
from dialsim.results.capacity import (
    blocking_batches,
    capacity_tables,
    engset,
    engset_at_offered,
    erlang_b,
    erlang_check,
    mean_confidence_interval,
)
from dialsim.scenario.errors import ScenarioError
from dialsim.scenario.load import scenario_from_text

# Traffic (erlangs) that M lines carry at a given blocking, as printed in the
# usual Erlang B tables (rounded as printed).
ERLANG_B_TABLE = {
    0.001: {10: 3.09, 20: 9.41, 50: 32.5, 100: 75.2},
    0.01: {1: 0.0101, 2: 0.153, 5: 1.36, 10: 4.46, 20: 12.0, 50: 37.9, 100: 84.1},
    0.02: {1: 0.0204, 2: 0.223, 5: 1.66, 10: 5.08, 20: 13.2, 50: 40.3, 100: 88.0},
    0.05: {1: 0.0526, 2: 0.381, 5: 2.22, 10: 6.22, 20: 15.2, 50: 44.5, 100: 95.2},
}


def _printed(x: float) -> float:
    """The traffic a table prints: three significant figures."""
    return float(f"{x:.3g}")


def _traffic_at(blocking: float, lines: int) -> float:
    lo, hi = 0.0, 10.0 * lines + 10
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if erlang_b(mid, lines) < blocking else (lo, mid)
    return lo


@pytest.mark.parametrize("blocking", sorted(ERLANG_B_TABLE))
def test_erlang_b_matches_the_published_table(blocking):
    for lines, traffic in ERLANG_B_TABLE[blocking].items():
        assert _printed(_traffic_at(blocking, lines)) == pytest.approx(traffic, abs=0.051), lines
        # The printed traffic gives the printed blocking within its rounding.
        assert erlang_b(traffic, lines) == pytest.approx(blocking, rel=0.06)


def test_erlang_b_small_cases_and_large_pools():
    assert erlang_b(1.0, 1) == 0.5
    assert erlang_b(2.0, 2) == pytest.approx(0.4)
    assert erlang_b(3.0, 3) == pytest.approx(4.5 / 13)
    assert erlang_b(0.0, 3) == 0.0 and erlang_b(5.0, 0) == 1.0
    # The recursion stays finite where A**M / M! overflows a float.
    assert 0.0 < erlang_b(5000.0, 5000) < 0.02
    with pytest.raises(ValueError):
        erlang_b(-1.0, 2)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=30), st.fractions(min_value=0, max_value=40,
                                                            max_denominator=20))
def test_erlang_b_equals_the_direct_formula(lines, traffic):
    """B = (A^M / M!) / sum_{k=0..M} A^k / k!, in exact arithmetic."""
    a = Fraction(traffic)
    terms = [a**k / math.factorial(k) for k in range(lines + 1)]
    exact = terms[-1] / sum(terms)
    assert erlang_b(float(a), lines) == pytest.approx(float(exact), rel=1e-9, abs=1e-300)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1.0, max_value=200), st.integers(min_value=1, max_value=100))
def test_erlang_b_falls_with_lines_and_rises_with_traffic(traffic, lines):
    b = erlang_b(traffic, lines)
    assert 0.0 < b < 1.0
    assert erlang_b(traffic, lines + 1) < b
    assert erlang_b(traffic * 1.1, lines) > b


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=25), st.integers(min_value=0, max_value=40),
       st.fractions(min_value=0, max_value=5, max_denominator=20))
def test_engset_equals_its_definition(lines, sources, beta):
    """Call congestion = the time congestion of the other N - 1 sources:
    C(N-1, M) b^M / sum_{k=0..M} C(N-1, k) b^k, in exact arithmetic (0 when
    the others cannot fill the lines)."""
    b, others = Fraction(beta), sources - 1
    if others < lines:
        exact = Fraction(0) if lines else Fraction(1)
    else:
        terms = [math.comb(others, k) * b**k for k in range(lines + 1)]
        exact = terms[-1] / sum(terms)
    assert engset(float(b), sources, lines) == pytest.approx(float(exact), rel=1e-9, abs=1e-300)


def test_engset_small_cases():
    assert engset(0.5, 1, 1) == 0.0  # a lone subscriber never finds its line taken
    # One other source holds the line a fraction b / (1 + b) of the time.
    assert engset(0.25, 2, 1) == pytest.approx(0.25 / 1.25)
    assert engset(1 / 3, 4, 2) == pytest.approx(1 / 7)
    assert engset(0.1, 10, 0) == 1.0 and engset(0.0, 10, 2) == 0.0
    assert engset(0.2, 5, 5) == 0.0  # as many lines as sources
    with pytest.raises(ValueError):
        engset(-0.1, 10, 2)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.1, max_value=30), st.integers(min_value=1, max_value=40),
       st.integers(min_value=1, max_value=400))
def test_engset_lies_below_erlang_b_and_tends_to_it(traffic, lines, extra):
    """With N sources offering A erlangs in all while idle (b = A / N), blocking
    is below Erlang B's and approaches it as N grows."""
    n = lines + extra
    assert engset(traffic / n, n, lines) <= erlang_b(traffic, lines) * (1 + 1e-12)
    big = 10**7
    assert engset(traffic / big, big, lines) == pytest.approx(erlang_b(traffic, lines),
                                                              rel=1e-4, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.01, max_value=30), st.integers(min_value=1, max_value=40),
       st.integers(min_value=1, max_value=400))
def test_engset_at_an_offered_load(offered, lines, extra):
    """The blocking B with which idle sources offering offered / (N - offered
    (1 - B)) each block B of their attempts; below Erlang B at that load."""
    n = int(offered) + 1 + extra
    b = engset_at_offered(offered, n, lines)
    assert b == pytest.approx(engset(offered / (n - offered * (1 - b)), n, lines), abs=1e-12)
    assert b <= erlang_b(offered, lines) * (1 + 1e-12)
    assert math.isnan(engset_at_offered(5.0, 5, 2)) and engset_at_offered(0.0, 5, 2) == 0.0


@pytest.mark.parametrize("offered, lines", [(2.0, 3), (4.0, 5), (3.0, 6), (6.0, 8)])
def test_100_sources_are_nearly_infinitely_many_at_the_erlang_test_points(offered, lines):
    """docs/capacity.md and tests/scenarios/test_erlang.py: at the same offered
    load, 100 finite sources block 0.003-0.004 less than Erlang B, a tenth of
    the simulation's confidence interval there (0.020-0.033)."""
    gap = erlang_b(offered, lines) - engset_at_offered(offered, 100, lines)
    assert 0.002 < gap < 0.005


def test_confidence_interval():
    mean, half = mean_confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert half == pytest.approx(3.182 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert math.isnan(mean_confidence_interval([5.0])[1])
    assert mean_confidence_interval([float("nan"), 1.0, 3.0])[0] == 2.0


# -- the tables, from hand-made calls


def _sessions(rows):
    cols = ["replication", "subscriber", "attempt", "line", "t_dial_s", "t_connect_s",
            "t_end_s", "end_reason", "profile", "strategy"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


NAN = float("nan")
CALLS = _sessions([
    # rep, sub, attempt, line, dial, connect, end, reason
    (0, 0, 1, 0, 600.0, 620.0, 4200.0, "quit", "v34", "delete"),  # spans hours 0 and 1
    (0, 1, 1, 1, 1800.0, 1815.0, 2700.0, "quit", "v90", "keep"),
    (0, 2, 1, -1, 2000.0, NAN, 2008.0, "busy", "v34", "delete"),  # both lines taken
    (0, 2, 2, 1, 3000.0, 3020.0, 3600.0, "quit", "v34", "delete"),
])
MESSAGES = pd.DataFrame({
    "replication": [0, 0, 0], "subscriber": [0, 1, 1], "direction": ["retrieved"] * 3,
    "duplicate": [False, False, True], "intact": [True] * 3,
    "t_retrieved_s": [700.0, 1900.0, 1950.0], "latency_s": [100.0, 300.0, 50.0]})


def test_lines_hours_and_subscribers_tables():
    t = capacity_tables(CALLS, MESSAGES, lines=2, subscribers=3, duration=5400.0)
    lines = t["lines"].set_index(["line", "hour"])
    assert lines.loc[(0, 0), "busy_s"] == 3000.0 and lines.loc[(0, 1), "busy_s"] == 600.0
    assert lines.loc[(1, 0), "busy_s"] == 900.0 + 600.0 and lines.loc[(1, 0), "seizures"] == 2
    assert lines.loc[(0, 1), "occupancy"] == pytest.approx(600.0 / 1800.0)  # a half hour
    hours = t["hours"].set_index("hour")
    assert list(hours["attempts"]) == [4, 0] and list(hours["blocked"]) == [1, 0]
    assert hours.loc[0, "blocking_probability"] == 0.25
    assert hours.loc[0, "carried_erlangs"] == pytest.approx(4500.0 / 3600.0)
    mean_seizure = (3600.0 + 900.0 + 600.0) / 3
    assert hours.loc[0, "offered_erlangs"] == pytest.approx(4 * mean_seizure / 3600.0)
    assert hours.loc[0, "erlang_b"] == pytest.approx(erlang_b(4 * mean_seizure / 3600.0, 2))
    assert hours.loc[0, "engset"] == pytest.approx(
        engset_at_offered(4 * mean_seizure / 3600.0, 3, 2))  # 3 subscribers as sources
    assert 0 < hours.loc[0, "engset"] < hours.loc[0, "erlang_b"]
    assert hours.loc[1, "engset"] == 0.0  # no attempt in the last half hour
    assert hours.loc[0, "messages_retrieved"] == 2  # the duplicate does not count
    assert hours.loc[0, "latency_mean_s"] == 200.0
    subs = t["subscribers"].set_index("subscriber")
    assert list(subs["attempts"]) == [1, 1, 2] and list(subs["blocked"]) == [0, 0, 1]
    assert subs.loc[2, "online_s"] == 580.0 and subs.loc[1, "profile"] == "v90"
    assert subs.loc[1, "latency_max_s"] == 300.0 and math.isnan(subs.loc[2, "latency_mean_s"])


def test_batches_and_the_erlang_check():
    b = blocking_batches(CALLS, lines=2, start_s=0.0, end_s=4000.0, batches=2)
    assert list(b["attempts"]) == [2, 2] and list(b["blocked"]) == [0, 1]
    r = erlang_check(b, 2)
    assert r["attempts"] == 4 and r["blocking"] == pytest.approx((0 + 1 / 2) / 2)
    assert r["erlang_b"] == pytest.approx(erlang_b(r["offered_erlangs"], 2))


# -- the population's subscribers


def _scenario(extra: str = "", **over):
    text = (
        "name: pop\nduration: 1 d\nsubscriber: {user: sub, password: pw}\n"
        "isp: {maildrop: {messages: 1}}\n"
        "population:\n  subscribers: 50\n  lines: 3\n" + extra)
    sc = scenario_from_text(text)
    return sc.with_overrides(over) if over else sc


def test_call_times_patterns():
    every = 3600.0
    periodic = CallTimes(_scenario("  calls: {pattern: periodic, every: 1 h}\n").population.calls,
                         np.random.default_rng(1))
    first = periodic(0.0, None)
    assert 0.0 <= first < every
    assert periodic(first + 10.0, first) == first + every
    assert periodic(first + 2.5 * every, first) == first + 3 * every  # missed ones skipped
    poisson = CallTimes(_scenario("  calls: {pattern: poisson, every: 1 h}\n").population.calls,
                        np.random.default_rng(2))
    gaps = [poisson(0.0, 0.0) for _ in range(4000)]
    assert np.mean(gaps) == pytest.approx(every, rel=0.05)
    assert np.std(gaps) == pytest.approx(every, rel=0.07)  # exponential: sd = mean
    evening = CallTimes(_scenario("  calls: {pattern: profile, every: 1 h}\n").population.calls,
                        np.random.default_rng(3))
    t, hours = 0.0, []
    for _ in range(20000):
        t = evening(t, t)
        hours.append(int(t // 3600) % 24)
    counts = np.bincount(hours, minlength=24)
    weights = evening.weights
    assert counts.sum() / (t / 3600) == pytest.approx(1.0, rel=0.05)  # mean rate kept
    for h in (3, 12, 20):
        assert counts[h] / counts.mean() == pytest.approx(weights[h], rel=0.15, abs=0.05)
    assert counts[20] > 5 * counts[3]


def test_traits_follow_the_shares_and_do_not_depend_on_population_size():
    sc = _scenario("  modems: {v34: 0.6, v22bis: 0.4}\n"
                   "  strategies: [{share: 0.25, mode: keep}, {share: 0.75, mode: delete}]\n")
    traits = [draw_traits(sc, np.random.default_rng(member_streams(1, 0, i)["traits"]))
              for i in range(2000)]
    assert sum(t.profile == "v22bis" for t in traits) / 2000 == pytest.approx(0.4, abs=0.04)
    assert sum(t.strategy.mode == "keep" for t in traits) / 2000 == pytest.approx(0.25, abs=0.03)
    assert traits[0].strategy_label in ("keep+uidl", "delete+uidl")
    # Subscriber i's streams are its own: the same whatever the population's size.
    a = member_streams(1, 0, 7)["calls"].generate_state(4)
    assert list(a) == list(member_streams(1, 0, 7)["calls"].generate_state(4))
    assert list(a) != list(member_streams(1, 1, 7)["calls"].generate_state(4))
    assert user_names(_scenario())[:2] == ["sub0001", "sub0002"]


@pytest.mark.parametrize("extra, expect", [
    ("  modems: {v34: 0.5, v90: 0.3}\n", "modem shares sum to 0.8"),
    ("  strategies: [{share: 0.5, mode: keep}]\n", "strategy shares sum to 0.5"),
    ("  modems: {v35: 1.0}\n", "population.modems"),
    ("  calls: {pattern: profile, profile: [1, 2]}\n", "24 hourly weights"),
    ("  holding: {mode: forever}\n", "population.holding.mode"),
])
def test_population_keys_are_checked(extra, expect):
    with pytest.raises(ScenarioError, match=expect):
        _scenario(extra)


def test_population_needs_what_it_models():
    with pytest.raises(ScenarioError, match="framing: ppp"):
        scenario_from_text("framing: slip\nsubscriber: {user: s, password: p}\n"
                           "isp: {maildrop: {messages: 1}}\n"
                           "population: {subscribers: 2, lines: 1}\n")
    with pytest.raises(ScenarioError, match="remove subscriber.calls"):
        scenario_from_text("subscriber: {user: s, password: p, calls: {every: 1 h}}\n"
                           "isp: {maildrop: {messages: 1}}\n"
                           "population: {subscribers: 2, lines: 1}\n")
    with pytest.raises(ScenarioError, match="out of reach"):
        scenario_from_text("link: {connect_rate: 28.8k}\nsubscriber: {user: s, password: p}\n"
                           "isp: {maildrop: {messages: 1}}\n"
                           "population: {subscribers: 2, lines: 1, modems: {v22bis: 1.0}}\n")


# -- the mail host's cap on POP3 sessions


class _Conn:
    state = "ESTABLISHED"


class _Store:
    def carry_out(self, effect):
        raise AssertionError("no storage in this test")


def test_pop3_sessions_beyond_the_cap_hear_sys_temp():
    isp = Isp(IspSettings(pop3_max_sessions=2), Accounts({"a": "pw"}), None, _Store(),
              tcp_rng=random.Random(1), ppp_rng=random.Random(2))
    accept = isp.mail.listeners[POP3_PORT]
    first = [accept(_Conn(), 0.0) for _ in range(2)]
    isp.mail.bindings += first
    third = accept(_Conn(), 1.0)
    assert all(b.machine.output(0.0)[0].startswith(b"+OK") for b in first)
    assert third.machine.output(1.0)[0].startswith(b"-ERR [SYS/TEMP]")
    assert isp.pop3_refused == 1 and isp.pop3_open() == 2
    first[0].machine.receive(b"QUIT\r\n", 2.0)  # a session that ends frees its place
    assert isp.pop3_open() == 1
    assert accept(_Conn(), 3.0).machine.output(3.0)[0].startswith(b"+OK")
