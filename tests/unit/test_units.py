"""Human units in scenario files: durations, sizes, rates, event rates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from dialsim.scenario.units import (
    Duration,
    EventRate,
    Rate,
    Size,
    format_duration,
    parse_duration,
    parse_event_rate,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45 s", 45.0),
        ("45s", 45.0),
        ("1.5 min", 90.0),
        ("15 min", 900.0),
        ("2 h", 7200.0),
        ("250 ms", 0.25),
        ("1 d", 86400.0),
        ("3 hours", 10800.0),
        (" 10 sec ", 10.0),
        ("0", 0.0),
        (45, 45.0),
        (1.5, 1.5),
        ("1e3 ms", 1.0),
    ],
)
def test_duration_ok(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "45 parsecs", "4 KiB", "", "s", "1 2 s", True, None, [1]])
def test_duration_bad_names_accepted_units(text):
    with pytest.raises(ValueError) as e:
        parse_duration(text)
    assert str(e.value) == (
        f'bad duration {text!r}; use a number with s, ms, min, h or d (e.g. "45 s")'
    )


def test_duration_negative_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration("-5 s")


@pytest.mark.parametrize(
    ("text", "octets"),
    [
        ("4 KiB", 4096),
        ("4KiB", 4096),
        ("200 KiB", 204800),
        ("1 MiB", 1048576),
        ("512 B", 512),
        ("4 kB", 4000),
        ("2 MB", 2_000_000),
        ("1.5 KiB", 1536),
        (4096, 4096),
        (4096.0, 4096),
        ("100", 100),
    ],
)
def test_size_ok(text, octets):
    value = parse_size(text)
    assert value == octets and isinstance(value, int)


@pytest.mark.parametrize("text", ["big", "4 KB/s", "1.5 B", 1.5, "4 Kib s", True])
def test_size_bad(text):
    with pytest.raises(ValueError, match=r"^bad size .*; use a whole number of bytes or a number with B, kB, KiB"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("28.8k", 28800.0),
        ("28800", 28800.0),
        ("33.6 kbps", 33600.0),
        ("56k", 56000.0),
        ("115200 bps", 115200.0),
        ("2400 bit/s", 2400.0),
        ("14.4 kbit/s", 14400.0),
        ("1.5 Mbps", 1.5e6),
        (9600, 9600.0),
    ],
)
def test_rate_ok(text, bps):
    assert parse_rate(text) == pytest.approx(bps)


@pytest.mark.parametrize("text", ["fast", "28.8 kB", "56 kbaud", True, "k"])
def test_rate_bad(text):
    with pytest.raises(ValueError, match=r"^bad rate .*; use bits per second"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["0", 0, "-2400"])
def test_rate_must_be_positive(text):
    with pytest.raises(ValueError, match="greater than 0"):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "per_s"),
    [("6 /h", 6 / 3600), ("6/h", 6 / 3600), ("0.5 /min", 0.5 / 60), ("2 per hour", 2 / 3600), ("1/s", 1.0)],
)
def test_event_rate_ok(text, per_s):
    assert parse_event_rate(text) == pytest.approx(per_s)


@pytest.mark.parametrize("text", ["6", 6, "6 /fortnight", "often"])
def test_event_rate_needs_a_unit(text):
    with pytest.raises(ValueError, match=r"use a number per s, min, h or d"):
        parse_event_rate(text)


class _M(BaseModel):
    d: Duration = 0.0
    s: Size = 0
    r: Rate = 1.0
    e: EventRate = 0.0


def test_annotated_types_in_a_model():
    m = _M(d="2 h", s="4 KiB", r="28.8k", e="6/h")
    assert (m.d, m.s, m.r) == (7200.0, 4096, 28800.0)
    assert m.e == pytest.approx(1 / 600)


def test_annotated_type_error_carries_the_hint():
    with pytest.raises(ValidationError) as e:
        _M(d="fast")
    assert "bad duration 'fast'; use a number with s, ms, min, h or d" in str(e.value)


@given(st.integers(min_value=0, max_value=10**7))
def test_format_duration_round_trips(seconds):
    assert parse_duration(format_duration(float(seconds))) == pytest.approx(seconds)
