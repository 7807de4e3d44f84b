"""Synthetic mail for the maildrops: RFC 5322 messages with RFC 2045/2046 MIME parts.

Scope: deterministic message synthesis from a ``numpy.random.Generator``.  Each
message has From, To, Subject, Date, Message-ID, MIME-Version and a
``Received`` trace line; its body is word-like plain text, or for a share of
messages a ``multipart/mixed`` body with a text part and a base64 attachment.
Sizes are drawn lognormal with the given median, and every message is built to
that size exactly (octets with CRLF line ends, as POP3 counts them), except
that it never gets smaller than its headers plus a short body.  Lines are at
most 78 characters (RFC 5322 section 2.1.1); some body lines start with "." so
that POP3/SMTP dot-stuffing is exercised (a lone "." line included).

No clock and no global randomness: the same generator state gives the same
bytes.  Text is built a word-array at a time and wrapped with :mod:`re`.
"""

from __future__ import annotations

import base64
import re
from bisect import bisect_left
from email.utils import formatdate
from itertools import accumulate
from operator import itemgetter

import numpy as np

__all__ = ["synthesize_messages", "random_message", "MIN_MESSAGE_OCTETS"]

_WORDS = np.array(
    (
        "the of and to a in is it you that he was for on are with as his they be at "
        "one have this from or had by hot word but what some we can out other were all "
        "there when up use your how said an each she which do their time if will way "
        "about many then them write would like so these her long make thing see him two "
        "has look more day could go come did number sound no most people my over know "
        "water than call first who may down side been now find any new work part take "
        "get place made live where after back little only round man year came show every "
        "good me give our under name very through just form sentence great think say help "
        "low line differ turn cause much mean before move right boy old too same tell does "
        "set three want air well also play small end put home read hand port large spell "
        "add even land here must big high such follow act why ask men change went light "
        "kind off need house picture try us again animal point mother world near build "
        "self earth father modem line baud carrier dial connect packet mail server client "
        "password account internet web page download upload newsgroup subscriber billing "
        "hours minute busy signal retry noise static phone bill weekend meeting schedule"
    ).split()
)
_FIRST = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")
_LAST = ("Smith", "Jones", "Miller", "Davis", "Garcia", "Wilson", "Moore", "Taylor", "Lee")
_SENDER_DOMAINS = ("example.com", "example.net", "example.org", "univ.example.edu")
_DOT_LINES = (".", "...", ". . .", ".signature follows", "..and so on", ".plan: none")
_EXTENSIONS = ("zip", "gif", "jpg", "doc", "pdf", "tar.gz")
_WRAP_RE = re.compile(r"(.{1,72})(?: +|$)")
_CRLF = b"\r\n"

MIN_MESSAGE_OCTETS = 64  # floor on the body part; headers come on top


_WORD_LIST = _WORDS.tolist()
_WORD_BYTES = [w.encode("ascii") for w in _WORD_LIST]
_WRAP_BYTES_RE = re.compile(_WRAP_RE.pattern.encode("ascii"))
_DOT_LINES_BYTES = tuple(d.encode("ascii") for d in _DOT_LINES)


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(map(_WORD_LIST.__getitem__, rng.integers(0, len(_WORDS), n).tolist()))


def _text_body(rng: np.random.Generator, octets: int) -> bytes:
    """Plain text of exactly ``octets`` octets (CRLF line ends, lines <= 72 chars)."""
    if octets <= 0:
        return b""
    if octets < 3:
        return b"\r\n"[-octets:] if octets == 2 else b" "
    # ~6 octets per word on average; draw plenty and cut.
    words = rng.integers(0, len(_WORDS), octets // 4 + 16).tolist()
    text = b" ".join(itemgetter(*words)(_WORD_BYTES))  # at least 16 words: a tuple
    lines = [m for m in _WRAP_BYTES_RE.findall(text) if m]
    # Paragraph breaks and dot-lines, inserted among the lines that will be kept.
    keep_est = max(1, octets // 90)
    n_breaks = int(rng.integers(0, keep_est // 6 + 1))
    n_dots = 1 + int(rng.poisson(octets / 4000))
    extra = [b""] * n_breaks + [
        _DOT_LINES_BYTES[int(i)] for i in rng.integers(0, len(_DOT_LINES), n_dots)
    ]
    positions = rng.integers(0, keep_est, len(extra))
    for pos, line in sorted(zip(positions.tolist(), extra, strict=True), reverse=True):
        lines.insert(pos, line)
    # The first line at which the text (each line with its CRLF) reaches ``octets``.
    ends = list(accumulate(map((2).__add__, map(len, lines))))
    k = min(bisect_left(ends, octets), len(lines) - 1)
    kept = lines[: k + 1]
    over = ends[k] - octets
    if over > 0:
        last = kept.pop()
        if over <= len(last):
            kept.append(last[: len(last) - over])
    body = _CRLF.join(kept) + _CRLF if kept else b""
    deficit = octets - len(body)
    if deficit == 1:  # too little for a line of its own: lengthen the last line
        return body[:-2] + b"z" + _CRLF
    return body + _pad(deficit)


def _pad(octets: int) -> bytes:
    """Filler lines of at most 72 octets totalling exactly ``octets`` (``octets`` != 1)."""
    if octets <= 0:
        return b""
    full, rest = divmod(octets, 72)
    if rest == 1:  # 73 = 71 + 2: a shorter line and an empty line
        return (b"z" * 70 + _CRLF) * (full - 1) + b"z" * 69 + _CRLF + _CRLF
    out = (b"z" * 70 + _CRLF) * full
    if rest >= 2:
        out += b"z" * (rest - 2) + _CRLF
    return out


def _headers(
    rng: np.random.Generator, t: float, to_addr: str, domain: str, extra: list[str]
) -> list[str]:
    first = _FIRST[int(rng.integers(0, len(_FIRST)))]
    last = _LAST[int(rng.integers(0, len(_LAST)))]
    sdom = _SENDER_DOMAINS[int(rng.integers(0, len(_SENDER_DOMAINS)))]
    subject = _words(rng, int(rng.integers(2, 8))).capitalize()
    msgid = f"<{int(t)}.{int(rng.integers(0, 2**32)):08x}@{sdom}>"
    date = formatdate(t, localtime=False)
    return [
        f"Received: from mail.{sdom} by mail.{domain};\r\n\t{date}",
        f"From: {first} {last} <{first.lower()}.{last.lower()}@{sdom}>",
        f"To: {to_addr}",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: {msgid}",
        "MIME-Version: 1.0",
        *extra,
    ]


def _join_headers(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _b64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters (57 octets each), CRLF ends, as
    ``base64.encodebytes`` makes them; the line ends put in by numpy."""
    if not data:
        return b""
    text = np.frombuffer(base64.b64encode(data), dtype=np.uint8)
    full, rest = divmod(len(text), 76)
    lines = np.empty((full, 78), dtype=np.uint8)
    lines[:, :76] = text[: full * 76].reshape(full, 76)
    lines[:, 76:] = (13, 10)
    return lines.tobytes() + (text[full * 76 :].tobytes() + _CRLF if rest else b"")


def _b64_raw_len_for(octets: int) -> int:
    """Raw bytes whose base64 (76-char lines + CRLF) is at most ``octets``."""
    full, rest = divmod(max(0, octets), 78)
    raw = full * 57
    if rest > 2:
        raw += ((rest - 2) // 4) * 3
    return raw


def _plain(rng, size, t, to_addr, domain) -> bytes:
    head = _join_headers(
        _headers(
            rng,
            t,
            to_addr,
            domain,
            ["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"],
        )
    )
    return head + _text_body(rng, max(MIN_MESSAGE_OCTETS, size - len(head)))


def _multipart(rng, size, t, to_addr, domain, index: int) -> bytes:
    boundary = f"=_dialsim_{int(rng.integers(0, 2**32)):08x}"
    head = _join_headers(
        _headers(
            rng,
            t,
            to_addr,
            domain,
            [f'Content-Type: multipart/mixed; boundary="{boundary}"'],
        )
    )
    ext = _EXTENSIONS[int(rng.integers(0, len(_EXTENSIONS)))]
    fname = f"file{index:04d}.{ext}"
    pre = (
        b"This is a multi-part message in MIME format.\r\n\r\n"
        + f"--{boundary}\r\n".encode()
        + b"Content-Type: text/plain; charset=us-ascii\r\n"
        + b"Content-Transfer-Encoding: 7bit\r\n\r\n"
    )
    mid = (
        f"--{boundary}\r\n"
        f'Content-Type: application/octet-stream; name="{fname}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{fname}"\r\n\r\n'
    ).encode()
    tail = f"--{boundary}--\r\n".encode()
    fixed = len(head) + len(pre) + len(mid) + len(tail)
    budget = max(0, size - fixed)
    att_share = float(rng.uniform(0.6, 0.95))
    raw = rng.bytes(_b64_raw_len_for(int(budget * att_share)))
    att = _b64_lines(raw) if raw else b""
    text = _text_body(rng, max(MIN_MESSAGE_OCTETS, budget - len(att)))
    return head + pre + text + mid + att + tail


def synthesize_messages(
    rng: np.random.Generator,
    count: int,
    *,
    median_size_octets: float,
    sigma: float = 1.0,
    attachment_share: float = 0.1,
    to_addr: str,
    domain: str,
    start_time: float,
) -> list[bytes]:
    """``count`` realistic messages, sizes lognormal(log(median), sigma), CRLF line ends.

    Dates start at ``start_time`` (Unix seconds) and advance by exponential gaps
    (mean 20 minutes).  The draws are made in a fixed order, so the same
    generator state always gives the same messages.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if median_size_octets <= 0:
        raise ValueError("median_size_octets must be > 0")
    sizes = rng.lognormal(np.log(median_size_octets), sigma, count)
    sizes = np.minimum(sizes, 64 * 1024 * 1024).astype(np.int64)
    with_attachment = rng.random(count) < attachment_share
    times = start_time + np.cumsum(rng.exponential(1200.0, count))
    out = []
    for i in range(count):
        t = float(times[i])
        if with_attachment[i]:
            out.append(_multipart(rng, int(sizes[i]), t, to_addr, domain, i + 1))
        else:
            out.append(_plain(rng, int(sizes[i]), t, to_addr, domain))
    return out


def random_message(
    rng: np.random.Generator,
    size_octets: int,
    *,
    to_addr: str = "user@isp.example",
    domain: str = "isp.example",
    start_time: float = 820454400.0,  # 1996-01-01
) -> bytes:
    """A one-part message whose body is base64 of random bytes, about ``size_octets`` long.

    Random data does not compress, so throughput checks over V.42bis-like links
    measure the line, not the compressor.  The result is within 4 octets of
    ``size_octets`` (or just headers plus one base64 line if that is larger).
    """
    head = _join_headers(
        _headers(
            rng,
            start_time,
            to_addr,
            domain,
            ["Content-Type: application/octet-stream", "Content-Transfer-Encoding: base64"],
        )
    )
    raw = rng.bytes(max(3, _b64_raw_len_for(size_octets - len(head))))
    return head + _b64_lines(raw)
