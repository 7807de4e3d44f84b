"""The pure link pipeline: throughput of the slowest stage, buffer backpressure,
drops, bit errors (V.42 off/on), V.42bis line octets, determinism."""

import math
import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.link import v42bis_ref
from dialsim.link.pipeline import (
    Direction,
    DirectionConfig,
    lapm_bits,
)
from tests.v42bis_corpus import base64_of_random, chunked, english_text

CHUNK = 1006
TEXT = (
    b"Received: from mail.isp.example by pop.isp.example; Mon, 4 Mar 1996 10:00:00\r\n"
    b"Subject: the quarterly report is attached, please read it before Monday\r\n"
    b"Dear all, as discussed in the meeting, the numbers for the quarter are below.\r\n"
)


def bulk(d: Direction, nchunks: int, payload=None, now=0.0):
    out = []
    for _ in range(nchunks):
        data = payload if payload is not None else os.urandom(CHUNK)
        out.extend(d.transmit(data, now))
    return out


def test_bulk_ec_off_runs_at_line_rate_exactly():
    lat = 0.062
    d = Direction(DirectionConfig(28800, latency_s=lat))
    n = 500
    deliveries = bulk(d, n)
    total = n * CHUNK
    ideal = total * 10 / 28800
    t_last = deliveries[-1].t
    assert t_last >= ideal  # never faster than the line
    assert abs(t_last - (ideal + lat)) / ideal < 0.005
    # line octets include start and stop bits
    assert d.bytes_on_line == pytest.approx(total * 10 / 8)


def test_bulk_written_as_accepted_gives_same_time():
    """A DTE that writes only when its serial port is free sees the same end time."""
    a = Direction(DirectionConfig(28800, latency_s=0.05))
    b = Direction(DirectionConfig(28800, latency_s=0.05))
    data = bytes(range(256)) * 4
    ta = [a.transmit(data, 0.0)[0].t for _ in range(200)]
    tb = []
    now = 0.0
    for _ in range(200):
        tb.append(b.transmit(data, now)[0].t)
        now = b.accepted_at()
    assert tb[-1] == pytest.approx(ta[-1], rel=1e-9)


def test_single_chunk_latency_formula():
    lat = 0.03
    d = Direction(DirectionConfig(28800, 115200, 57600, latency_s=lat))
    n = 100
    (dl,) = d.transmit(b"x" * n, 5.0)
    ser_in = 10 / 115200
    ser_out = 10 / 57600
    line = n * 10 / 28800
    # first byte in, then the line, latency, and the last byte out of the far port
    assert dl.t == pytest.approx(5.0 + ser_in + line + lat + ser_out, abs=1e-12)
    assert dl.data == b"x" * n



def test_v42_frames_on_the_fly_and_the_receiver_checks_whole_frames():
    # A small packet with V.42 (a 9600 line, serial ports at 38400): the sending
    # modem starts the I-frame with the first octet (FCS computed on the fly);
    # the receiving modem hands the frame over only once it is in and checked,
    # so its serial port clocks all n octets out after the frame's last bit.
    lat = 0.05
    d = Direction(DirectionConfig(9600, 38400, 38400, latency_s=lat, error_correction=True))
    n = 86
    (dl,) = d.transmit(b"x" * n, 0.0)
    ser = 10 / 38400
    frame = lapm_bits(n, 1.0) / 9600
    assert dl.t == pytest.approx(ser + frame + lat + n * ser, abs=1e-12)
    # Without V.42 the far port follows the line octet by octet: for a packet
    # this small that is faster than V.42's hold of the whole frame.
    plain = Direction(DirectionConfig(9600, 38400, 38400, latency_s=lat))
    (dp,) = plain.transmit(b"x" * n, 0.0)
    assert dp.t == pytest.approx(ser + n * 10 / 9600 + lat + ser, abs=1e-12)
    assert dp.t < dl.t

def test_bulk_ec_on_follows_lapm_formula():
    rate = 28800
    d = Direction(DirectionConfig(rate, latency_s=0.06, error_correction=True))
    n = 400
    deliveries = bulk(d, n)
    total = n * CHUNK
    # Full 128-octet I-frames: flag + (address, control, FCS, info) * (1 + 1/62)
    frame_bits = 8 + (8 + 16 + 16 + 128 * 8) * (1 + 1 / 62)
    assert lapm_bits(128, 1) == pytest.approx(frame_bits)
    ideal = total / 128 * frame_bits / rate
    assert abs(deliveries[-1].t - ideal) / ideal < 0.01
    # V.42 beats async framing: 8.5 line bits per byte instead of 10
    assert deliveries[-1].t < total * 10 / rate


def test_slow_sender_serial_port_is_the_bottleneck():
    d = Direction(DirectionConfig(28800, dte_rate_in_bps=9600, latency_s=0.04))
    deliveries = bulk(d, 200)
    ideal = 200 * CHUNK * 10 / 9600
    assert abs(deliveries[-1].t - ideal) / ideal < 0.005
    assert deliveries[-1].t >= ideal


def test_slow_receiver_serial_port_is_the_bottleneck():
    d = Direction(DirectionConfig(28800, dte_rate_out_bps=9600, latency_s=0.04))
    deliveries = bulk(d, 200)
    ideal = 200 * CHUNK * 10 / 9600
    assert abs(deliveries[-1].t - ideal) / ideal < 0.005


def test_finite_buffer_backpressures_the_serial_port():
    small = Direction(DirectionConfig(14400, tx_buffer_bytes=1024))
    large = Direction(DirectionConfig(14400, tx_buffer_bytes=4096))
    n = 100
    ds = bulk(small, n, b"a" * CHUNK)
    dl = bulk(large, n, b"a" * CHUNK)
    total = n * CHUNK
    # The DTE's last byte gets into the modem once the line drained all but a buffer.
    for d, buf in ((small, 1024), (large, 4096)):
        assert d.accepted_at() == pytest.approx((total - buf) * 10 / 14400, rel=1e-3)
    # A bigger buffer lets the DTE finish sooner but the line is no faster.
    assert small.accepted_at() - large.accepted_at() == pytest.approx(3072 * 10 / 14400, rel=1e-3)
    assert ds[-1].t == pytest.approx(dl[-1].t, rel=1e-9)


def test_never_delivers_faster_than_the_line_with_a_huge_buffer():
    d = Direction(DirectionConfig(2400, tx_buffer_bytes=10**9))
    ds = bulk(d, 30, b"z" * 300)
    assert d.accepted_at() == pytest.approx(30 * 300 * 10 / 115200, rel=1e-6)
    for k, dl in enumerate(ds, start=1):
        assert dl.t >= k * 300 * 10 / 2400


@given(
    st.lists(
        st.tuples(st.integers(1, 3000), st.floats(0.0, 0.5, allow_nan=False)),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([2400.0, 14400.0, 28800.0]),
    st.integers(64, 4096),
)
@settings(max_examples=150, deadline=None)
def test_deliveries_in_order_and_bounded_by_line(chunks, rate, buf):
    d = Direction(DirectionConfig(rate, tx_buffer_bytes=buf, latency_s=0.01))
    now = 0.0
    cum = 0
    last = -math.inf
    for n, gap in chunks:
        now += gap
        (dl,) = d.transmit(b"q" * n, now)
        cum += n
        assert dl.t >= last
        assert dl.t >= now + n * 10 / rate
        assert dl.t >= cum * 10 / rate  # line-rate bound since t=0
        last = dl.t
    assert d.backlog_bytes(now) <= cum
    assert d.backlog_bytes(last) == 0


def test_drop_discards_undelivered_chunks_whole():
    d = Direction(DirectionConfig(9600, latency_s=0.05))
    ds = [d.transmit(b"m" * 500, 0.0)[0] for _ in range(10)]
    t_drop = (ds[3].t + ds[4].t) / 2
    d.drop(t_drop)
    assert d.chunks_lost == 6
    assert d.bytes_lost == 6 * 500
    assert d.transmit(b"after", t_drop + 1) == []
    assert d.bytes_discarded == 5
    d.drop(t_drop + 2)  # twice is harmless
    assert d.chunks_lost == 6


def test_drop_at_exact_delivery_time_keeps_that_chunk():
    d = Direction(DirectionConfig(9600))
    ds = [d.transmit(b"m" * 100, 0.0)[0] for _ in range(3)]
    d.drop(ds[1].t)
    assert d.chunks_lost == 1


def test_bit_errors_corrupt_without_ec_and_leave_timing_alone():
    clean = Direction(DirectionConfig(28800))
    noisy = Direction(DirectionConfig(28800, bit_error_rate=1e-4), np.random.default_rng(7))
    data = bytes(range(256)) * 4
    flipped = 0
    for _ in range(50):
        (a,) = clean.transmit(data, 0.0)
        (b,) = noisy.transmit(data, 0.0)
        assert a.t == b.t
        assert len(b.data) == len(data)
        diff = np.bitwise_xor(np.frombuffer(a.data, np.uint8), np.frombuffer(b.data, np.uint8))
        flipped += int(np.unpackbits(diff).sum())
    errors = noisy.bit_errors + noisy.framing_errors
    # 51200 bytes * 10 bits * 1e-4 ~ 51 errors expected; 8 of 10 hit data bits
    assert 20 < errors < 100
    assert 0 < flipped <= noisy.bit_errors
    assert noisy.bit_errors > noisy.framing_errors


def test_bit_errors_with_ec_delay_but_never_corrupt():
    cfg = dict(line_rate_bps=28800, latency_s=0.05, error_correction=True)
    clean = Direction(DirectionConfig(**cfg))
    noisy = Direction(DirectionConfig(bit_error_rate=1e-5, **cfg), np.random.default_rng(3))
    data = os.urandom(CHUNK)
    for _ in range(100):
        (a,) = clean.transmit(data, 0.0)
        (b,) = noisy.transmit(data, 0.0)
        assert b.data == data
        assert b.t >= a.t
    assert noisy.retransmissions > 0
    assert b.t > a.t
    # each retransmission costs at least one frame time on the line
    assert noisy.bytes_on_line - clean.bytes_on_line == pytest.approx(
        noisy.retransmissions * lapm_bits(128, 1) / 8
    )


def test_same_seed_same_corruption():
    def run(seed):
        d = Direction(DirectionConfig(9600, bit_error_rate=1e-3), np.random.default_rng(seed))
        return [d.transmit(TEXT, float(i))[0] for i in range(20)]

    assert run(11) == run(11)
    assert run(11) != run(12)


EC = dict(line_rate_bps=28800, latency_s=0.06, error_correction=True)


def _send(cfg: DirectionConfig, chunks: list[bytes]) -> tuple[Direction, float]:
    d = Direction(cfg)
    t = 0.0
    for c in chunks:
        (dl,) = d.transmit(c, 0.0)
        assert dl.data == c  # the far DTE gets the original octets
        t = dl.t
    return d, t


def test_v42bis_line_octets_are_the_encoders_output():
    """The information octets on the line are exactly what a V.42bis encoder
    (here the pure-Python reference, fed the same chunks) makes of each chunk."""
    chunks = chunked(english_text(30_000) + base64_of_random(20_000), 700)
    for p1, p2 in ((2048, 32), (512, 6)):
        d, _ = _send(DirectionConfig(compression=True, v42bis_p1=p1, v42bis_p2=p2, **EC), chunks)
        ref = v42bis_ref.V42bisEncoder(p1, p2)
        assert d.bytes_compressed == sum(len(ref.encode(c)) for c in chunks)


def test_v42bis_speeds_up_text_but_not_base64_or_random():
    n = 100_000
    for data, lo, hi in (
        (english_text(n), 0.40, 0.55),  # BTLZ on English text: about 0.45
        (base64_of_random(n), 1.0, 1.002),  # transparent mode: as V.42 alone
        (random.Random(5).randbytes(n), 1.0, 1 + 1 / 256 + 0.001),  # plus ESC EID
    ):
        chunks = chunked(data, CHUNK)
        plain, t_plain = _send(DirectionConfig(**EC), chunks)
        comp, t_comp = _send(DirectionConfig(compression=True, **EC), chunks)
        ratio = comp.bytes_on_line / plain.bytes_on_line
        assert lo <= ratio <= hi
        assert t_comp / t_plain == pytest.approx(ratio, rel=0.01)


def test_v42bis_dictionary_is_kept_for_the_call():
    """A chunk sent again (a TCP retransmission) compresses better: the strings
    of the first copy are still in the direction's dictionary (LZW learns each
    string one octet longer per pass, so the gain is modest)."""
    text = english_text(6_000)
    chunk = text[5_000:6_000]
    d = Direction(DirectionConfig(compression=True, **EC))
    for c in chunked(text[:5_000]):
        d.transmit(c, 0.0)
    before = d.bytes_compressed
    d.transmit(chunk, 0.0)
    first = d.bytes_compressed - before
    d.transmit(chunk, 0.0)
    second = d.bytes_compressed - before - first
    assert second < 0.9 * first
    # a new call starts with an empty dictionary
    fresh = Direction(DirectionConfig(compression=True, **EC))
    fresh.transmit(chunk, 0.0)
    assert fresh.bytes_compressed > first


def test_a_larger_dictionary_compresses_text_better():
    chunks = chunked(english_text(100_000))
    small, _ = _send(DirectionConfig(compression=True, v42bis_p1=512, v42bis_p2=6, **EC), chunks)
    large, _ = _send(DirectionConfig(compression=True, **EC), chunks)
    assert large.bytes_compressed < 0.85 * small.bytes_compressed


def test_config_validation():
    with pytest.raises(ValueError):
        DirectionConfig(0)
    with pytest.raises(ValueError):
        DirectionConfig(2400, compression=True)
    with pytest.raises(ValueError):
        DirectionConfig(2400, bit_error_rate=1.5)
    with pytest.raises(ValueError):
        DirectionConfig(2400, tx_buffer_bytes=0)
    for p1, p2 in ((511, 32), (4097, 32), (2048, 5), (2048, 251)):
        with pytest.raises(ValueError, match="P1|P2"):
            DirectionConfig(2400, error_correction=True, v42bis_p1=p1, v42bis_p2=p2)


def test_empty_write_is_nothing():
    d = Direction(DirectionConfig(2400))
    assert d.transmit(b"", 0.0) == []
    assert d.chunks == 0


@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=1500), st.floats(0.0, 0.3, allow_nan=False)),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
    st.sampled_from([0.0, 1e-5, 1e-4]),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=100, deadline=None)
def test_ec_delivers_intact_and_in_order(chunks, compression, ber, seed):
    cfg = DirectionConfig(
        28800,
        latency_s=0.05,
        error_correction=True,
        compression=compression,
        bit_error_rate=ber,
    )
    d = Direction(cfg, np.random.default_rng(seed))
    now, last = 0.0, -math.inf
    for data, gap in chunks:
        now += gap
        (dl,) = d.transmit(data, now)
        assert dl.data == data
        assert dl.t > now and dl.t >= last
        last = dl.t
