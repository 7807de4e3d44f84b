"""Message synthesis (dialsim.mail.synth)."""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils

import numpy as np
import pytest

from dialsim.mail.synth import random_message, synthesize_messages


def make(seed=1, count=300, **kw):
    kw.setdefault("median_size_octets", 4000)
    kw.setdefault("to_addr", "bob@isp.example")
    kw.setdefault("domain", "isp.example")
    kw.setdefault("start_time", 820454400.0)
    return synthesize_messages(np.random.default_rng(seed), count, **kw)


def test_deterministic_for_a_seed_and_different_across_seeds():
    assert make(5, 30) == make(5, 30)
    assert make(5, 30) != make(6, 30)


def test_sizes_follow_lognormal_with_given_median():
    msgs = make(2, 1000, median_size_octets=6000, sigma=1.0)
    sizes = np.array([len(m) for m in msgs])
    assert abs(np.median(sizes) / 6000 - 1) < 0.12
    # The log-sizes spread like sigma (above the header floor).
    assert 0.8 < np.std(np.log(sizes[sizes > 2000])) < 1.2


def test_messages_hit_the_drawn_size_exactly_when_above_the_floor():
    rng = np.random.default_rng(3)
    drawn = rng.lognormal(np.log(8000), 0.5, 200).astype(np.int64)
    msgs = make(3, 200, median_size_octets=8000, sigma=0.5, attachment_share=0.3)
    sizes = np.array([len(m) for m in msgs])
    big = drawn > 1500
    assert big.sum() > 150
    assert np.all(np.abs(sizes[big] - drawn[big]) <= 4)


def test_wire_format_crlf_line_length_and_dot_lines():
    for m in make(4, 100, attachment_share=0.3):
        assert b"\n" not in m.replace(b"\r\n", b"")
        assert b"\r" not in m.replace(b"\r\n", b"")
        assert m.endswith(b"\r\n")
        lines = m.split(b"\r\n")
        assert max(len(x) for x in lines) <= 78
        assert any(x.startswith(b".") for x in lines)
        m.decode("ascii")


def test_headers_and_mime_structure_parse():
    msgs = make(5, 200, attachment_share=0.25)
    n_multi = 0
    for raw in msgs:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for h in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
            assert msg[h], h
        assert msg["To"] == "bob@isp.example"
        assert not msg.defects
        if msg.is_multipart():
            n_multi += 1
            parts = list(msg.iter_parts())
            assert [p.get_content_type() for p in parts] == ["text/plain", "application/octet-stream"]
            assert parts[1]["Content-Transfer-Encoding"] == "base64"
            base64.b64decode(parts[1].get_payload(), validate=False)
        else:
            assert msg.get_content_type() == "text/plain"
    assert 25 <= n_multi <= 75  # ~25 % of 200


def test_dates_increase_from_start_time():
    msgs = make(6, 20)
    times = [
        email.utils.parsedate_to_datetime(
            email.message_from_bytes(m, policy=email.policy.default)["Date"]
        ).timestamp()
        for m in msgs
    ]
    assert times[0] >= 820454400 and times == sorted(times)


def test_argument_checks():
    with pytest.raises(ValueError):
        make(count=-1)
    with pytest.raises(ValueError):
        make(median_size_octets=0)
    assert make(count=0) == []


@pytest.mark.parametrize("size", [2000, 10_000, 250_000])
def test_random_message_size_and_incompressible_body(size):
    import zlib

    m = random_message(np.random.default_rng(9), size)
    assert abs(len(m) - size) <= 4
    head, _, body = m.partition(b"\r\n\r\n")
    raw = base64.b64decode(body)
    assert len(zlib.compress(raw)) > 0.98 * len(raw)
    assert max(len(x) for x in m.split(b"\r\n")) <= 78
    assert random_message(np.random.default_rng(9), size) == m
