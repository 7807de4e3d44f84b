"""Data for the V.42bis tests and benchmark: English text, base64 of random
octets (as a MIME attachment carries it), random octets; all deterministic.

English text comes from CPython's own reference documentation
(``pydoc_data.topics``, shipped with every CPython), so no file has to be
fetched and the text is the same on every machine with the same Python.
"""

from __future__ import annotations

import base64
import random

MAIL_CHUNK = 1006  # the default SLIP/PPP MTU: one write on the serial line

# Chunks found by hypothesis (P1 512, P2 7): compressed mode, a flush, an empty
# chunk (a second flush with no string in progress), then more data.  The empty
# flush made the encoder forget the flushed string that the next octet extends
# (6.4); the decoder, which saw nothing, added that entry: the dictionaries parted.
FLUSHED_THEN_EMPTY = [
    b"\x01\x00\x01\x01\x00\x02\x00\x01\x00\x03\x00\x04\x00\x01\x02" * 21 + b"\x01\x00",
    b"",
    b"\x01\x01\x00\x02\x00\x01\x00\x03\x00\x04\x00\x01\x02\x00\x00\x00\x00",
]


def english_text(n: int) -> bytes:
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics)).encode()
    return (text * (n // len(text) + 1))[:n]


def base64_of_random(n: int, seed: int = 2) -> bytes:
    """MIME base64 (76-character lines, CRLF) of random octets, ``n`` octets long."""
    raw = random.Random(seed).randbytes(n * 3 // 4 + 3)
    lines = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return lines[:n]


def random_octets(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def chunked(data: bytes, size: int = MAIL_CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


CORPORA = {
    "text": english_text,
    "base64": base64_of_random,
    "random": random_octets,
}
