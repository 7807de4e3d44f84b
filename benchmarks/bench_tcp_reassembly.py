"""Benchmark: TCP receive-side reassembly of many out-of-order segments.

    python benchmarks/bench_tcp_reassembly.py [--against REV]

A TcpConnection in ESTABLISHED (receive buffer 65535) is fed N segments of a
stream (6 octets each, so 10 000 fit the window): with the first segment
arriving last and the others in reverse order, in a random order, or in a
random order with every segment sent twice and a third of them re-cut to
overlap their neighbours ("dup+overlap"); or every other segment first and
then the holes filled one by one from the front ("holes", what a go-back-N
retransmission after a burst of losses looks like).
Each out-of-order segment is answered with a duplicate ACK, as the connection
does.  Printed: microseconds per arriving segment for N = 1 000 ... 10 000;
a linear reassembly keeps that flat as N grows.  The delivered stream is
checked against the original.

``--against REV`` runs the same on the dialsim package of a git revision and
on this tree, alternating twice, for a side-by-side comparison in one run.
"""

from __future__ import annotations

import argparse
import random
import time

from bench_tcp import side_by_side

SIZES = (1_000, 2_000, 5_000, 10_000)
PATTERNS = ("reverse", "random", "holes", "dup+overlap")
SEGMENT = 6
A, B = "10.0.0.1", "10.0.0.2"


def _api():
    from dialsim.proto import tcp

    try:
        from dialsim.proto.tcp_segment import ACK, SYN, build_segment
    except ImportError:  # revisions before the split
        from dialsim.proto.tcp import ACK, SYN, build_segment
    if hasattr(tcp.TcpConnection, "receive_segment"):  # revisions before the machine interface
        return tcp, ACK, SYN, build_segment, "receive_segment", "segments_to_send"
    return tcp, ACK, SYN, build_segment, "receive", "output"


def established():
    """A connection B:110 <- A:40000 in ESTABLISHED, and its receive and output methods."""
    tcp, ACK, SYN, build_segment, receive, output = _api()
    conn = tcp.TcpConnection(B, 110, A, 40000, iss=5000, rcv_buffer=65535, mss=1460)
    conn.listen()
    rx, tx = getattr(conn, receive), getattr(conn, output)
    rx(build_segment(A, B, 40000, 110, 999, 0, SYN, 65535, mss=1460), 0.0)
    tx(0.0)
    rx(build_segment(A, B, 40000, 110, 1000, 5001, ACK, 65535), 0.0)
    assert conn.state == "ESTABLISHED"
    conn.events()
    return conn, rx, tx


def arrivals(n: int, pattern: str, rng: random.Random) -> tuple[bytes, list[tuple[int, int]]]:
    """The stream, and the (start, end) of each arriving segment in arrival order."""
    stream = rng.randbytes(n * SEGMENT)
    spans = [(i * SEGMENT, (i + 1) * SEGMENT) for i in range(n)]
    if pattern == "holes":  # every other segment lost, then the holes filled one by one
        return stream, spans[1::2] + spans[0::2]
    first, rest = spans[0], spans[1:]
    if pattern == "reverse":
        rest.reverse()
    else:
        rng.shuffle(rest)
    if pattern == "dup+overlap":
        rest += [(a, min(b + SEGMENT // 2, n * SEGMENT)) if rng.random() < 1 / 3 else (a, b) for a, b in rest]
        rng.shuffle(rest)
    return stream, [*rest, first]


def run(n: int, pattern: str) -> float:
    _tcp, ACK, _SYN, build_segment, _r, _o = _api()
    stream, spans = arrivals(n, pattern, random.Random(n))
    segs = [build_segment(A, B, 40000, 110, 1000 + a, 5001, ACK, 65535, stream[a:b]) for a, b in spans]
    conn, rx, tx = established()
    got = bytearray()
    t0 = time.perf_counter()
    for i, seg in enumerate(segs):
        rx(seg, 1.0)
        if i % 64 == 0:
            tx(1.0)
    tx(1.0)
    for ev in conn.events():
        got += getattr(ev, "data", b"")
    dt = time.perf_counter() - t0
    if bytes(got) != stream:
        raise SystemExit(f"{pattern} n={n}: reassembled {len(got)} octets, not the stream")
    return dt / len(segs) * 1e6


def measure() -> list[dict]:
    rows = []
    run(SIZES[0], "random")  # warm up
    for pattern in PATTERNS:
        rows.append({"pattern": pattern, "us": [min(run(n, pattern) for _ in range(3)) for n in SIZES]})
    return rows


def show(label: str, rows: list[dict]) -> None:
    for r in rows:
        cells = "  ".join(f"{us:8.1f}" for us in r["us"])
        print(f"{label:>10}  {r['pattern']:>11}: {cells}   us/segment")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", metavar="REV", help="also measure this git revision")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        import json

        print(json.dumps(measure()))
        return
    print(f"out-of-order segments ({SEGMENT} octets each), N = " + ", ".join(map(str, SIZES)))
    if not args.against:
        show("this tree", measure())
        return
    old, new = side_by_side(
        __file__, args.against, [], 2,
        lambda a, b: {**a, "us": [min(x, y) for x, y in zip(a["us"], b["us"], strict=True)]},
    )
    show(args.against, old)
    show("this tree", new)


if __name__ == "__main__":
    main()
