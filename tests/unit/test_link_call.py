"""The simpy call layer: dial timing, busy, no answer, no carrier, connect rates,
carrying data through ports, carrier loss, hang-up, determinism of draws."""

import numpy as np
import pytest
import simpy

from dialsim.link.call import Call, DialResult, LinkConfig, dial
from dialsim.link.profiles import PROFILES, DialTiming


def run_dial(cfg: LinkConfig, seed=1, after=None, until=None):
    env = simpy.Environment()
    events = []
    out = {}

    def on_event(t, ev, detail):
        events.append((t, ev, detail))

    def proc():
        res = yield env.process(dial(env, cfg, np.random.default_rng(seed), on_event))
        out["result"] = res
        if after is not None and res.call is not None:
            yield from after(env, res.call)

    env.process(proc())
    env.run(until=until)
    return out["result"], events


WAIT = DialTiming().dial_tone_wait_s  # off-hook to the first digit


def names(events):
    return [e for _t, e, _d in events]


def test_dial_timing_and_event_story():
    cfg = LinkConfig(profile="v34", phone_number="555-0123")
    res, events = run_dial(cfg)
    assert res.outcome == "connect"
    assert isinstance(res.call, Call)
    assert names(events) == ["dial", "ringing", "answer", "train", "connect"]
    t = {e: tt for tt, e, _ in events}
    dialing = WAIT + 7 * 2 * 0.095  # dial tone, then 7 DTMF digits of tone + equal gap (S11)
    assert dialing + 1.0 <= t["ringing"] <= dialing + 3.0  # post-dial delay
    assert t["answer"] == pytest.approx(t["ringing"] + 2.0)  # S0=1: end of first ring
    lo, hi = PROFILES["v34"].handshake_s
    assert lo <= t["connect"] - t["answer"] <= hi  # V.34 handshake
    assert res.t_connect == t["connect"] and res.t_dial == 0.0
    assert res.connect_rate_down_bps in PROFILES["v34"].rates_bps
    assert res.connect_rate_up_bps == res.connect_rate_down_bps
    connect_detail = events[-1][2]
    assert connect_detail.startswith(f"CONNECT {res.connect_rate_down_bps:.0f}")
    assert connect_detail.endswith("/V42BIS")


def test_answer_after_s0_rings():
    cfg = LinkConfig(timing=DialTiming(answer_after_rings=3))
    res, events = run_dial(cfg)
    rings = [t for t, e, _ in events if e == "ringing"]
    assert len(rings) == 3
    assert rings[1] - rings[0] == pytest.approx(6.0)  # 2 s on, 4 s off
    answer = next(t for t, e, _ in events if e == "answer")
    assert answer == pytest.approx(rings[2] + 2.0)


def test_busy():
    cfg = LinkConfig(busy_probability=1.0)
    res, events = run_dial(cfg)
    assert res == DialResult("busy", None, 0.0, None, None, None)
    assert names(events) == ["dial", "busy"]
    dialing = WAIT + 7 * 0.19
    assert dialing + 1.0 + 2.0 <= events[-1][0] <= dialing + 3.0 + 2.0


def test_no_answer_waits_s7():
    cfg = LinkConfig(no_answer_probability=1.0)
    res, events = run_dial(cfg)
    assert res.outcome == "no_answer" and res.call is None
    assert events[-1][1] == "no_answer"
    assert events[-1][0] == pytest.approx(WAIT + 7 * 0.19 + 50.0)
    rings = [t for t, e, _ in events if e == "ringing"]
    assert all(b - a == pytest.approx(6.0) for a, b in zip(rings, rings[1:], strict=False))
    assert rings[-1] < events[-1][0] <= rings[-1] + 6.0  # rings every 6 s until S7 = 50 s
    assert len(rings) >= 8


def test_training_failure_is_no_carrier_at_s7():
    res, events = run_dial(LinkConfig(training_failure_probability=1.0))
    assert res.outcome == "no_carrier"
    assert events[-1][1] == "no_carrier"
    assert events[-1][0] == pytest.approx(WAIT + 7 * 0.19 + 50.0)


def test_short_s7_bounds_training():
    cfg = LinkConfig(profile="v90", timing=DialTiming(carrier_wait_s=10.0))
    res, events = run_dial(cfg)
    assert res.outcome == "no_carrier"  # V.90 needs 15-25 s of handshake


def test_v90_rates_in_realistic_range_and_upstream_slower():
    downs = []
    for seed in range(40):
        res, _ = run_dial(LinkConfig(profile="v90"), seed=seed)
        assert 40000 <= res.connect_rate_down_bps <= 53334
        assert res.connect_rate_up_bps <= 33600
        # V.90 downstream steps of 8000/6 bit/s
        k = res.connect_rate_down_bps * 6 / 8000
        assert abs(k - round(k)) < 1e-3
        downs.append(res.connect_rate_down_bps)
    assert len(set(downs)) > 3


def test_fixed_connect_rate():
    res, _ = run_dial(LinkConfig(profile="v90", connect_rate_bps=50666.67))
    assert res.connect_rate_down_bps == 50666.67
    assert res.connect_rate_up_bps == 31200.0
    res, _ = run_dial(LinkConfig(profile="v32bis", connect_rate_bps=9600))
    assert (res.connect_rate_down_bps, res.connect_rate_up_bps) == (9600, 9600)


def test_fixed_connect_rate_out_of_profile_is_an_error():
    with pytest.raises(ValueError, match="out of reach"):
        run_dial(LinkConfig(profile="v22bis", connect_rate_bps=28800))


def test_bad_config():
    with pytest.raises(ValueError):
        LinkConfig(profile="v99")
    with pytest.raises(ValueError):
        LinkConfig(error_correction=False, compression=True)
    with pytest.raises(ValueError):
        LinkConfig(busy_probability=2.0)


def test_same_seed_same_calls_and_independent_streams():
    a, ea = run_dial(LinkConfig(), seed=42)
    b, eb = run_dial(LinkConfig(), seed=42)
    assert ea == eb and a.connect_rate_down_bps == b.connect_rate_down_bps
    # Turning on drops and bit errors does not move the rate or the handshake.
    c, ec = run_dial(LinkConfig(carrier_loss_mtbf_s=100.0, bit_error_rate=1e-5), seed=42)
    assert c.connect_rate_down_bps == a.connect_rate_down_bps
    assert c.t_connect == a.t_connect
    assert ec[: len(ea)] == ea
    assert ec[-1][1] == "carrier_lost"  # the drop came later, after CONNECT


def test_bulk_through_ports_at_line_rate():
    cfg = LinkConfig(
        profile="v34", connect_rate_bps=28800, error_correction=False, compression=False
    )
    got = []
    n, size = 300, 1006

    def after(env, call):
        def reader():
            while True:
                data = yield call.subscriber.read()
                got.append((env.now, data))

        env.process(reader())
        t0 = env.now
        for i in range(n):
            call.isp.write(bytes([i % 256]) * size)
        yield env.timeout(200)
        got.append(("t0", t0))
        call.hangup("subscriber")

    res, events = run_dial(cfg, after=after)
    t0 = got.pop()[1]
    assert len(got) == n
    assert [d[0] for _t, d in got] == [i % 256 for i in range(n)]  # in order
    elapsed = got[-1][0] - t0
    ideal = n * size * 10 / 28800
    assert abs(elapsed - ideal - PROFILES["v34"].latency_one_way_s) / ideal < 0.005
    c = res.call.subscriber.counters
    assert c["octets_in"] == n * size
    assert c["line_octets_in"] == pytest.approx(n * size * 10 / 8)
    assert events[-1][1:] == ("hangup", "subscriber")
    assert res.call.carrier_lost.value == "hangup"


def test_scheduled_carrier_loss_drops_in_flight_data():
    cfg = LinkConfig(connect_rate_bps=9600, error_correction=False, compression=False)
    state = {}

    def after(env, call):
        t_connect = env.now
        got = []

        def reader():
            while True:
                got.append((yield call.subscriber.read()))

        env.process(reader())
        for _ in range(20):
            call.isp.write(b"x" * 1000)  # ~21 s of data at 9600
        reason = yield call.carrier_lost
        state.update(reason=reason, t=env.now, got=len(got), t_connect=t_connect)
        call.isp.write(b"late")
        state["refused"] = call.isp.counters["octets_refused"]
        state["lost"] = call.isp.counters["octets_lost_out"]

    # first drop time is before CONNECT and does nothing; the second ends the call
    res, events = run_dial(
        LinkConfig(**{**cfg.__dict__, "carrier_loss_at": [1.0, 30.0]}), after=after
    )
    assert state["reason"] == "carrier_lost"
    assert state["t"] == 30.0
    assert ("carrier_lost" in names(events)) and names(events)[-1] == "carrier_lost"
    assert not res.call.up
    delivered = state["got"]
    assert 0 < delivered < 20
    assert state["lost"] == (20 - delivered) * 1000
    assert state["refused"] == 4


def test_mtbf_drop_happens_and_is_reproducible():
    def after(env, call):
        yield call.carrier_lost

    r1, e1 = run_dial(LinkConfig(carrier_loss_mtbf_s=60.0), seed=5, after=after)
    r2, e2 = run_dial(LinkConfig(carrier_loss_mtbf_s=60.0), seed=5, after=after)
    assert e1 == e2
    assert e1[-1][1] == "carrier_lost"
    assert r1.call.t_down > r1.t_connect


def test_hangup_cancels_pending_drop_and_is_idempotent():
    def after(env, call):
        yield env.timeout(1.0)
        call.hangup("isp")
        call.hangup("subscriber")
        call.lose_carrier()

    res, events = run_dial(LinkConfig(carrier_loss_at=[10_000.0]), after=after)
    assert names(events)[-1] == "hangup"
    assert names(events).count("hangup") == 1 and "carrier_lost" not in names(events)
    assert res.call.end_reason == "hangup"


def test_read_can_be_cancelled():
    def after(env, call):
        ev = call.subscriber.read()
        ev.cancel()
        call.isp.write(b"hello")
        yield env.timeout(5)
        got = yield call.subscriber.read()
        assert got == b"hello"
        call.hangup()

    run_dial(LinkConfig(), after=after)


def test_ec_noise_delays_but_delivers_intact_through_ports():
    cfg = LinkConfig(connect_rate_bps=28800, bit_error_rate=1e-4)
    payload = bytes(range(256)) * 4
    got = []

    def after(env, call):
        def reader():
            while True:
                got.append((yield call.isp.read()))

        env.process(reader())
        for _ in range(20):
            call.subscriber.write(payload)
        yield env.timeout(60)
        assert call.subscriber.counters["retransmissions_out"] > 0
        call.hangup()

    run_dial(cfg, after=after)
    assert got == [payload] * 20
