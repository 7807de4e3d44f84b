"""Failure processes of the line (pure): Gilbert-Elliott bursts, retrains, V.42's
N400 give-up, RR acknowledgements on the reverse line, bounded receive buffers."""

import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.link.impairments import (
    BurstNoise,
    BurstNoiseConfig,
    Retrain,
    RetrainConfig,
    RetrainSchedule,
)
from dialsim.link.pipeline import Direction, DirectionConfig, lapm_bits

EC = dict(line_rate_bps=28800, latency_s=0.05, error_correction=True)


# -- the Gilbert-Elliott channel ----------------------------------------------


def test_burst_noise_spends_the_expected_share_of_time_in_bursts():
    cfg = BurstNoiseConfig(mean_good_s=9.0, mean_bad_s=1.0, bad_bit_error_rate=1e-3)
    noise = BurstNoise(cfg, np.random.default_rng(4), 0.0)
    share = noise.bad_time(0.0, 20_000.0) / 20_000.0
    assert share == pytest.approx(0.1, abs=0.02)
    # a burst lasts mean_bad_s on average
    flips = np.asarray(noise._flips)
    bursts = flips[1::2][: len(flips[0::2])] - flips[0::2][: len(flips[1::2])]
    assert bursts.mean() == pytest.approx(1.0, rel=0.15)


@given(st.integers(0, 2**32 - 1), st.floats(0.0, 500.0), st.floats(0.001, 100.0))
@settings(max_examples=60, deadline=None)
def test_segments_cover_the_interval_and_agree_with_ber_at(seed, t0, length):
    cfg = BurstNoiseConfig(mean_good_s=3.0, mean_bad_s=0.5, bad_bit_error_rate=1e-3,
                           good_bit_error_rate=1e-7)
    noise = BurstNoise(cfg, np.random.default_rng(seed), 0.0)
    segs = noise.segments(t0, t0 + length)
    assert segs[0][0] == t0 and segs[-1][1] == t0 + length
    for (_s0, e0, b0), (s1, _e1, b1) in zip(segs, segs[1:], strict=False):
        assert e0 == s1 and b0 != b1
    mids = np.array([(s + e) / 2 for s, e, _ in segs])
    assert list(noise.ber_at(mids)) == [b for _s, _e, b in segs]


def test_burst_noise_is_the_same_whatever_the_order_of_questions():
    cfg = BurstNoiseConfig(mean_good_s=2.0, mean_bad_s=0.3, bad_bit_error_rate=1e-4)
    a = BurstNoise(cfg, np.random.default_rng(9), 0.0)
    b = BurstNoise(cfg, np.random.default_rng(9), 0.0)
    a.segments(0.0, 1000.0)
    b.ber_at(np.array([3.0]))
    b.segments(500.0, 600.0)
    b.segments(0.0, 1000.0)
    assert a.segments(0.0, 1000.0) == b.segments(0.0, 1000.0)


def test_bursts_retransmit_with_v42_and_deliver_intact():
    cfg = BurstNoiseConfig(mean_good_s=1.0, mean_bad_s=1.0, bad_bit_error_rate=1e-2)
    quiet = Direction(DirectionConfig(**EC))
    noisy = Direction(DirectionConfig(**EC), np.random.default_rng(1),
                      noise=BurstNoise.fixed(cfg, [0.5, 0.7]))
    data = os.urandom(1000)
    for k in range(8):
        (a,) = quiet.transmit(data, 0.2 * k)
        (b,) = noisy.transmit(data, 0.2 * k)
        assert b.data == data and b.t >= a.t
    # a 200 ms burst at 1e-2 kills every frame (38 ms each) that starts in it
    # (here 3: the line also waits out the recovery of the first ones)
    assert noisy.retransmissions >= 3
    assert noisy.link_failed_at is None


def test_a_long_burst_makes_v42_give_up_after_n400():
    cfg = BurstNoiseConfig(mean_good_s=1.0, mean_bad_s=1.0, bad_bit_error_rate=1e-2)
    d = Direction(DirectionConfig(**EC, lapm_n400=3, lapm_t401_s=1.0), np.random.default_rng(2),
                  noise=BurstNoise.fixed(cfg, [1.0, 100.0]))
    assert len(d.transmit(b"x" * 500, 0.0)) == 1  # before the burst
    assert d.transmit(b"y" * 500, 1.5) == []  # never gets through
    tf = lapm_bits(128, 1) / 28800
    start = 1.5 + 10 / 115200  # the first octet is in: the modem frames on the fly
    # 4 frames, a REJ round trip, 4 again, then T401 before each of 2 more
    # tries (N400 = 3 retransmissions), and T401 once more before giving up
    expected = start + 4 * 4 * tf + (2 * 0.05 + tf) + 3 * 1.0
    assert d.link_failed_at == pytest.approx(expected)
    assert d.chunks_lost == 1 and d.retransmissions == 12


def test_bursts_without_v42_flip_bits_only_inside_the_burst():
    cfg = BurstNoiseConfig(mean_good_s=1.0, mean_bad_s=1.0, bad_bit_error_rate=5e-3)
    d = Direction(DirectionConfig(9600), np.random.default_rng(3),
                  noise=BurstNoise.fixed(cfg, [0.5, 0.6]))
    data = bytes(1200)  # 1.25 s on the line from t = 0
    (dl,) = d.transmit(data, 0.0)
    hit = np.nonzero(np.frombuffer(dl.data, np.uint8))[0]
    assert hit.size > 0 and d.bit_errors + d.framing_errors > 0
    t_byte = 0.0 + 10 / 115200 + hit * 10 / 9600  # when each hit byte was on the line
    assert (t_byte > 0.45).all() and (t_byte < 0.65).all()


# -- retrains -----------------------------------------------------------------


def test_retrain_schedule_pauses_the_line_and_changes_the_rate():
    sched = RetrainSchedule.fixed([Retrain(1.0, 3.0, 14400.0, 14400.0, False)], 28800, 28800)
    assert sched.advance(0.0, 28800.0, 0) == pytest.approx(1.0)  # just done before it
    # 1 s at 28800, the pause, the rest at 14400
    assert sched.advance(0.0, 43200.0, 0) == pytest.approx(3.0 + 14400 / 14400)
    assert sched.advance(2.0, 14400.0, 0) == pytest.approx(4.0)  # waits for the retrain's end
    assert sched.rate_at(0.5, 0) == 28800 and sched.rate_at(2.0, 0) == 28800
    assert sched.rate_at(3.0, 1) == 14400


def test_drawn_retrains_step_along_the_ladder_and_stop_after_a_failure():
    ladder = (19200.0, 21600.0, 24000.0, 26400.0, 28800.0)
    cfg = RetrainConfig(mean_time_between_s=60.0, duration_s=(2.0, 4.0), fallback_probability=0.5,
                        failure_probability=0.1)
    sched = RetrainSchedule(cfg, np.random.default_rng(5), 0.0, 28800.0, 28800.0, ladder, ladder)
    rs = sched.upto(100_000.0)
    assert rs and all(2.0 <= r.end - r.start <= 4.0 for r in rs)
    prev = 28800.0
    for r in rs:
        assert r.down_bps in ladder and abs(ladder.index(r.down_bps) - ladder.index(prev)) <= 1
        prev = r.down_bps
    assert rs[-1].fails and not any(r.fails for r in rs[:-1])
    assert sched.nth(len(rs)) is None


def test_bulk_transfer_through_a_retrain_takes_the_pause_and_the_new_rate():
    sched = RetrainSchedule.fixed([Retrain(10.0, 13.0, 14400.0, 14400.0, False)], 28800, 28800)
    d = Direction(DirectionConfig(28800, tx_buffer_bytes=10**9), retrains=sched)
    out = [d.transmit(b"r" * 1000, 0.0)[0] for _ in range(72)]  # 20 s at 28800
    bytes_before = 10.0 * 2880
    after = (72_000 - bytes_before) * 10 / 14400
    assert out[-1].t == pytest.approx(13.0 + after, rel=0.01)


# -- acknowledgements and receive buffers ---------------------------------------


def test_rr_frames_are_charged_to_the_reverse_line_unless_piggybacked():
    down = Direction(DirectionConfig(**EC))
    up = Direction(DirectionConfig(**EC))
    down.pair(up)
    for _ in range(20):
        down.transmit(os.urandom(1000), 0.0)  # ~160 frames down, nothing up
    up.transmit(b"a" * 40, 100.0)  # flushes the RRs owed by then
    assert up.ack_frames == math.ceil(8 / 7) * 20
    rr = lapm_bits(0, 1)
    assert up.ack_octets == pytest.approx(up.ack_frames * rr / 8)
    before = up.bytes_on_line
    # Upstream data at the moment the next chunk arrives carries the ack.
    (dl,) = down.transmit(b"b" * 100, 200.0)
    up.transmit(b"c" * 100, dl.t - 0.01)
    up.transmit(b"c", dl.t + 1.0)
    assert up.acks_piggybacked >= 1
    # two data frames went up and no RR of their own
    assert up.bytes_on_line - before == pytest.approx((lapm_bits(100, 1) + lapm_bits(1, 1)) / 8)


def test_bounded_receive_buffer_flow_controls_the_sender_with_v42():
    # the subscriber's DTE takes 9600 bit/s from a 28800 line
    cfg = dict(EC, dte_rate_out_bps=9600, tx_buffer_bytes=2048)
    free = Direction(DirectionConfig(**cfg))
    held = Direction(DirectionConfig(**cfg, rx_buffer_bytes=2048))
    a = [free.transmit(os.urandom(1000), 0.0)[0] for _ in range(40)]
    b = [held.transmit(os.urandom(1000), 0.0)[0] for _ in range(40)]
    # the far DTE gets the data no later: its port is the bottleneck either way
    assert b[-1].t == pytest.approx(a[-1].t, rel=0.01)
    # but the sender is held back by the far DTE's port (RNR, then its own
    # modem's CTS), not by the line: all but the two buffers must have left
    per_octet = lapm_bits(128, 1) / 128 / 28800
    assert free.accepted_at() == pytest.approx((40_000 - 2048) * per_octet, rel=0.02)
    ideal = (40_000 - 2048 - 2048) * 10 / 9600
    assert held.accepted_at() == pytest.approx(ideal, rel=0.05)


def test_without_v42_a_full_receive_buffer_loses_octets():
    cfg = dict(line_rate_bps=28800, dte_rate_out_bps=9600)
    d = Direction(DirectionConfig(**cfg, rx_buffer_bytes=1024))
    got = sum(len(d.transmit(b"o" * 1000, 0.0)[0].data) for _ in range(20))
    assert d.overrun_octets > 0 and got == 20_000 - d.overrun_octets
    # the DTE port drains 1/3 of what arrives: about 2/3 of what exceeds the buffer is lost
    assert d.overrun_octets == pytest.approx((20_000 - 1024) * 2 / 3, rel=0.1)
    roomy = Direction(DirectionConfig(**cfg, rx_buffer_bytes=10**6))
    assert all(len(roomy.transmit(b"o" * 1000, 0.0)[0].data) == 1000 for _ in range(20))


@given(
    st.lists(st.tuples(st.binary(min_size=1, max_size=1500), st.floats(0.0, 0.5)),
             min_size=1, max_size=30),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_every_impairment_at_once_still_delivers_intact_and_in_order(chunks, seed, compression):
    rng = np.random.default_rng(seed)
    noise = BurstNoise(BurstNoiseConfig(0.5, 0.2, 1e-3, 1e-6), rng.spawn(1)[0], 0.0)
    ladder = (19200.0, 24000.0, 28800.0)
    sched = RetrainSchedule(RetrainConfig(2.0, (0.5, 1.0)), rng.spawn(1)[0], 0.0, 28800.0,
                            28800.0, ladder, ladder)
    cfg = DirectionConfig(28800, error_correction=True, compression=compression, latency_s=0.05,
                          rx_buffer_bytes=2048, lapm_n400=10**6)
    down = Direction(cfg, rng, noise=noise, retrains=sched, side=0)
    up = Direction(cfg, rng, noise=noise, retrains=sched, side=1)
    down.pair(up)
    now, last = 0.0, -math.inf
    for k, (data, gap) in enumerate(chunks):
        now += gap
        d = down if k % 3 else up
        (dl,) = d.transmit(data, now)
        assert dl.data == data and dl.t > now
        if d is down:
            assert dl.t >= last
            last = dl.t
