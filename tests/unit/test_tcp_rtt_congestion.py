"""TCP's parts on their own: the RFC 6298 RTO estimator and RFC 5681/6582 NewReno."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialsim.proto.tcp_congestion import NewReno, initial_window
from dialsim.proto.tcp_rtt import RttEstimator


def test_first_and_later_samples_follow_rfc6298():
    r = RttEstimator(initial_rto=1.0, min_rto=0.0, max_rto=60.0, granularity=0.001)
    r.time(100, now=0.0)
    r.on_ack(101, now=0.8)  # 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR)
    assert (r.srtt, r.rttvar, r.rto) == (0.8, 0.4, pytest.approx(2.4))
    r.time(200, now=1.0)
    r.on_ack(201, now=1.4)  # 2.3 with alpha 1/8, beta 1/4
    assert r.rttvar == pytest.approx(0.75 * 0.4 + 0.25 * 0.4)
    assert r.srtt == pytest.approx(0.875 * 0.8 + 0.125 * 0.4)


def test_clock_granularity_bounds_the_variance_term():
    fine = RttEstimator(3.0, 0.0, 60.0, granularity=0.001)
    bsd = RttEstimator(3.0, 0.0, 60.0, granularity=0.5)  # tcp_slowtimo's 500 ms tick
    for r in (fine, bsd):
        r.time(0, 0.0)
        r.on_ack(1, 0.1)
    assert fine.rto == pytest.approx(0.1 + 4 * 0.05)
    assert bsd.rto == pytest.approx(0.1 + 0.5)


def test_karn_backoff_and_bounds():
    r = RttEstimator(1.0, 1.0, 8.0, 0.001)
    r.time(10, 0.0)
    assert r.timing
    r.time(20, 0.5)  # one timed segment at a time: this one is not timed
    r.back_off()  # the timer expired: doubled, and the timed segment gives no sample
    assert r.rto == 2.0 and not r.timing
    r.on_ack(30, 5.0)
    assert r.srtt is None
    for _ in range(5):
        r.back_off()
    assert r.rto == 8.0 and r.backed_off(3) == 8.0
    r.syn_was_retransmitted()  # RFC 6298 5.7: at least 3 s with no sample
    assert r.rto == 8.0
    r.rto = 1.0
    r.syn_was_retransmitted()
    assert r.rto == 3.0
    r.time(40, 10.0)
    r.on_ack(40, 11.0)  # does not cover the timed segment's first octet: no sample
    assert r.timing and r.srtt is None
    r.on_ack(41, 10.0001)
    assert r.rto == 1.0  # minimum


@given(st.lists(st.floats(0.0, 30.0), min_size=1, max_size=50))
def test_rto_stays_within_its_bounds(samples):
    r = RttEstimator(1.0, 1.0, 60.0, 0.5)
    now = 0.0
    for i, rtt in enumerate(samples):
        r.time(i, now)
        now += rtt
        r.on_ack(i + 1, now)
        assert 1.0 <= r.rto <= 60.0 and r.srtt >= 0 and r.rttvar >= 0


def test_initial_window_by_smss():
    assert [initial_window(m) for m in (536, 1095, 1096, 1460, 2190, 2191)] == [
        2144, 4380, 3288, 4380, 6570, 4382]


def test_slow_start_then_avoidance():
    cc = NewReno(iss=0)
    cc.start(536)
    cc.ssthresh = 4000
    assert cc.cwnd == 2144
    assert not cc.on_ack(ack=2000, acked=1072, flight=0, smss=536)
    assert cc.cwnd == 2144 + 536  # min(acked, SMSS)
    cc.on_ack(ack=3000, acked=536, flight=0, smss=536)
    cc.on_ack(ack=4000, acked=536, flight=0, smss=536)
    assert cc.cwnd == 3752
    cc.on_ack(ack=5000, acked=536, flight=0, smss=536)
    assert cc.cwnd == 4288  # ssthresh crossed
    cc.on_ack(ack=6000, acked=536, flight=0, smss=536)
    assert cc.cwnd == 4288 + 536 * 536 // 4288  # about SMSS per round trip


def test_fast_retransmit_partial_and_full_ack():
    cc = NewReno(iss=0)
    cc.start(536)
    assert not cc.on_duplicate_ack(ack=100, flight=5360, smss=536, snd_max=5460)
    assert not cc.on_duplicate_ack(ack=100, flight=5360, smss=536, snd_max=5460)
    assert cc.on_duplicate_ack(ack=100, flight=5360, smss=536, snd_max=5460)
    assert cc.in_recovery and cc.ssthresh == 2680 and cc.cwnd == 2680 + 3 * 536 and cc.recover == 5460
    assert not cc.on_duplicate_ack(ack=100, flight=5360, smss=536, snd_max=5460)
    assert cc.cwnd == 2680 + 4 * 536  # inflated
    assert cc.on_ack(ack=1000, acked=900, flight=4460, smss=536)  # partial: retransmit
    assert cc.in_recovery and cc.cwnd == 2680 + 4 * 536 - 900 + 536
    assert not cc.on_ack(ack=5460, acked=4460, flight=0, smss=536)  # full
    assert not cc.in_recovery and cc.cwnd == min(2680, 536 + 536)
    # RFC 6582 4.1: duplicate ACKs below ``recover`` start no new recovery
    for _ in range(3):
        assert not cc.on_duplicate_ack(ack=5000, flight=460, smss=536, snd_max=5460)


def test_timeout_collapses_the_window():
    cc = NewReno(iss=0)
    cc.start(1460)
    cc.on_timeout(flight=8000, smss=1460, snd_max=9000)
    assert (cc.cwnd, cc.ssthresh, cc.in_recovery, cc.recover) == (1460, 4000, False, 9000)
    cc.on_timeout(flight=1000, smss=1460, snd_max=9000)
    assert cc.ssthresh == 2 * 1460
