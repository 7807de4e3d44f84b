"""The modem pool against Erlang B (docs/capacity.md).

Poisson call attempts from 100 subscribers, blocked calls cleared (no redial),
each call held for an exponentially drawn time while its real PPP negotiation
and POP3 session (login, STAT, QUIT on an empty maildrop) run inside it: for four (offered load, lines) points the
simulated blocking lies within the 95 % confidence interval (batch means after
a warm-up hour) around Erlang's B formula at the measured offered load.  100
sources are not infinitely many (Engset): the difference that makes, 0.003
to 0.004 at these points (tests/unit/test_capacity.py), is far inside the
interval.
"""

from __future__ import annotations

import pytest

from dialsim.experiment.engine import from_arrow, replicate
from dialsim.results.capacity import blocking_batches, erlang_b, erlang_check
from dialsim.scenario.load import scenario_from_text

HOLD_S = 600.0  # mean time online after CONNECT
SETUP_S = 20.0  # about the dial, ring and train before it: the line is held from the dial
WARMUP_S = 3600.0
ATTEMPTS = 600

ERLANG = """
name: erlang-check
seed: 5
framing: ppp
link: {profile: v34, connect_rate: 28.8k}
subscriber:
  user: caller
  password: tanstaaf
  redial: {attempts: 1}
isp:
  maildrop: {messages: 0}
population:
  subscribers: 100
  lines: 1
  calls: {pattern: poisson}
  holding: {mode: exponential, mean: 10 min}
"""


@pytest.mark.parametrize("offered, lines", [(2.0, 3), (4.0, 5), (3.0, 6), (6.0, 8)])
def test_blocking_lies_within_the_confidence_interval_of_erlang_b(offered, lines):
    rate = offered / (HOLD_S + SETUP_S)  # attempts per second while every source is idle
    span = ATTEMPTS / rate
    sc = scenario_from_text(ERLANG).with_overrides({
        "population.lines": lines, "population.calls.every": f"{100 / rate:.3f} s",
        "duration": f"{WARMUP_S + span:.0f} s"})
    sessions = from_arrow(replicate(sc, 0).tables["sessions"])
    batches = blocking_batches(sessions, lines=lines, start_s=WARMUP_S, end_s=sc.duration,
                               batches=10)
    r = erlang_check(batches, lines)
    assert r["attempts"] > 0.8 * ATTEMPTS
    assert r["offered_erlangs"] == pytest.approx(offered, rel=0.15)  # the load we meant
    assert abs(r["difference"]) <= r["half_width"], r
    assert r["half_width"] < 0.05  # a check that could fail
    # The POP3 sessions really ran inside the calls.
    up = sessions[sessions["t_connect_s"].notna()]
    assert up["t_logged_in_s"].notna().mean() > 0.95
    assert erlang_b(offered, lines) == pytest.approx(r["erlang_b"], abs=0.05)
