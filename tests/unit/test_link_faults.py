"""Failure processes of a call in simpy time: retrains reported with their rates,
call waiting (and ``*70``), V.42 giving up, the line cut while dialing, an ISP
hang-up's cause, tariffs; none of them moves the draws of the others."""

import numpy as np
import pytest

from dialsim.link.call import LinkConfig, Tariff, call_waiting_disabled
from dialsim.link.impairments import BurstNoiseConfig, RetrainConfig
from tests.unit.test_link_call import names, run_dial


def _idle(env, call):
    yield call.carrier_lost | env.timeout(3600)
    call.hangup()  # ends the retrain story too


def test_retrains_report_the_new_rate_and_keep_the_lowest():
    cfg = LinkConfig(connect_rate_bps=28800, retrain=RetrainConfig(
        mean_time_between_s=120.0, duration_s=(2.0, 4.0), fallback_probability=0.6))
    res, events = run_dial(cfg, seed=3, after=_idle)
    call = res.call
    starts = [t for t, e, _ in events if e == "retrain"]
    changes = [(t, d) for t, e, d in events if e == "rate_change"]
    assert len(starts) >= 10 and len(changes) in (len(starts), len(starts) - 1)
    for t0, (t1, detail) in zip(starts, changes, strict=False):
        assert 2.0 <= t1 - t0 <= 4.0
        assert detail.startswith("CONNECT ") and detail.endswith("/V42BIS")
    rates = [float(d.split()[1].split("/")[0]) for _t, d in changes]
    assert call.retrains == len(changes)
    assert call.rate_down_bps == rates[-1] and call.lowest_rate_down_bps == min([28800.0, *rates])
    assert call.connect_rate_down_bps == 28800.0


def test_a_failed_retrain_drops_the_carrier():
    cfg = LinkConfig(retrain=RetrainConfig(mean_time_between_s=60.0, failure_probability=1.0))
    res, events = run_dial(cfg, after=_idle)
    assert names(events)[-2:] == ["retrain", "carrier_lost"]
    assert events[-1][2] == "NO CARRIER (retrain failed)"
    assert res.call.end_cause == "carrier_lost"


def test_call_waiting_clicks_the_carrier_away_unless_star_70():
    rate = 1 / 300.0
    res, events = run_dial(LinkConfig(call_waiting_per_s=rate), seed=8, after=_idle)
    assert names(events)[-2:] == ["call_waiting", "carrier_lost"]
    assert events[-1][2] == "NO CARRIER (call waiting)"
    t_click = events[-1][0]
    res2, events2 = run_dial(LinkConfig(call_waiting_per_s=rate, phone_number="*70,555-0123"),
                             seed=8, after=_idle)
    assert "call_waiting" not in names(events2)
    assert res2.call.t_down == pytest.approx(res2.t_connect + 3600)  # _idle's hang-up
    # the disabling code is dialled: 3 more tones and a comma pause (S8)
    assert res2.t_connect > res.t_connect + 2.0
    assert t_click > res.t_connect
    assert call_waiting_disabled("*70, 555 0123") and call_waiting_disabled("1170,5550123")
    assert not call_waiting_disabled("555-0123")


def test_v42_giving_up_drops_the_call_through_the_ports():
    cfg = LinkConfig(connect_rate_bps=28800, lapm_n400=2, lapm_t401_s=1.0,
                     burst_noise=BurstNoiseConfig(mean_good_s=5.0, mean_bad_s=60.0,
                                                  bad_bit_error_rate=1e-2))
    got = []

    def after(env, call):
        def reader():
            while True:
                got.append((yield call.isp.read()))

        env.process(reader())
        while call.up:
            call.subscriber.write(b"p" * 500)
            yield env.timeout(0.5)

    res, events = run_dial(cfg, seed=1, after=after)
    assert events[-1][1:] == ("carrier_lost", "NO CARRIER (V.42: N400 retransmissions)")
    assert res.call.end_cause == "carrier_lost"
    assert got and all(c == b"p" * 500 for c in got)  # what came through is intact


def test_the_line_cut_while_dialing_or_training_ends_the_attempt():
    base = dict(carrier_loss_at=[1.0], carrier_loss_while_dialing=True)
    res, events = run_dial(LinkConfig(**base))
    assert res.outcome == "no_carrier" and res.call is None
    assert events[-1][0] == 1.0 and events[-1][1] == "no_carrier"
    res, events = run_dial(LinkConfig(carrier_loss_at=[12.0], carrier_loss_while_dialing=True))
    assert "answer" in names(events) and res.outcome == "no_carrier"
    assert res.t_answer is not None and res.t_answer < 12.0 == events[-1][0]
    # without the flag, a drop before CONNECT does nothing (as always)
    res, _ = run_dial(LinkConfig(carrier_loss_at=[12.0]))
    assert res.outcome == "connect"


def test_a_hang_up_keeps_its_cause():
    def after(env, call):
        yield env.timeout(5)
        call.hangup("isp", "isp_idle_timeout")

    res, events = run_dial(LinkConfig(), after=after)
    assert res.call.end_reason == "hangup" and res.call.end_cause == "isp_idle_timeout"
    assert events[-1][1:] == ("hangup", "isp: isp_idle_timeout")


def test_failure_processes_do_not_shift_other_draws():
    plain, _ = run_dial(LinkConfig(carrier_loss_mtbf_s=100.0), seed=21, after=_idle)
    busy, _ = run_dial(LinkConfig(carrier_loss_mtbf_s=100.0, call_waiting_per_s=1e-9,
                                  retrain=RetrainConfig(1e9),
                                  burst_noise=BurstNoiseConfig(1e9, 1.0, 0.1)),
                       seed=21, after=_idle)
    assert plain.t_connect == busy.t_connect
    assert plain.connect_rate_down_bps == busy.connect_rate_down_bps
    assert plain.call.t_down == busy.call.t_down


@pytest.mark.parametrize("seconds, cost", [(0.0, 0.1), (1.0, 0.15), (60.0, 0.15),
                                           (60.5, 0.2), (float("nan"), 0.0)])
def test_tariff_charges_per_call_and_per_started_minute(seconds, cost):
    assert Tariff(per_call=0.1, per_minute=0.05).cost(seconds) == pytest.approx(cost)
    assert Tariff(per_minute=0.06, increment_s=1.0).cost(90.0) == pytest.approx(0.09)


def test_impairment_configs_refuse_nonsense():
    with pytest.raises(ValueError):
        BurstNoiseConfig(0.0, 1.0, 0.1)
    with pytest.raises(ValueError):
        RetrainConfig(10.0, (5.0, 1.0))
    with pytest.raises(ValueError):
        LinkConfig(call_waiting_per_s=-1.0)
    assert np.isfinite(Tariff().cost(5.0))
