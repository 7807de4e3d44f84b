"""Benchmark: async-HDLC (RFC 1662) and SLIP (RFC 1055) encode/decode throughput.

    python benchmarks/bench_framing.py [--megabytes N] [--implementation python|c]

Frames of 1500 octets, on two kinds of data:

- random octets (HDLC with ACCM 0, as after LCP negotiated it: about 1 octet
  in 128 is escaped; SLIP: 1 in 128);
- escape-heavy octets (HDLC: only 0x00-0x1F, 0x7D, 0x7E with the default ACCM,
  so every octet is escaped; SLIP: only 0xC0 and 0xDB).

Encode: ``hdlc_encode`` / ``slip_encode`` per frame.  Decode: the whole line
stream fed to a fresh decoder in 4096-octet reads.  Prints payload megabytes
(10**6 octets) per second, best of seven runs.  ``--implementation`` picks the
HDLC encoder and decoder (:func:`dialsim.proto.hdlc.implementation`): ``python``,
the reference (the default), or ``c``, the compiled twin PPP frames with.
"""

from __future__ import annotations

import argparse
import random
import time

from dialsim.proto.hdlc import DEFAULT_ACCM, IMPLEMENTATIONS, implementation
from dialsim.proto.slip import SlipDecoder, slip_encode

FRAME = 1500
READ = 4096


def _frames(alphabet: bytes | None, megabytes: float, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    n = max(1, int(megabytes * 1e6) // FRAME)
    if alphabet is None:
        return [rng.randbytes(FRAME) for _ in range(n)]
    return [bytes(rng.choices(alphabet, k=FRAME)) for _ in range(n)]


def _best(fn, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _decode_all(decoder_factory, wire: bytes) -> int:
    dec = decoder_factory()
    got = 0
    for i in range(0, len(wire), READ):
        got += len(dec.receive(wire[i : i + READ]))
    return got


def _row(name: str, frames: list[bytes], encode, decoder_factory) -> None:
    payload = sum(len(f) for f in frames)
    wire = b"".join(encode(f) for f in frames)
    assert _decode_all(decoder_factory, wire) == len(frames), f"{name}: frames lost"
    t_enc = _best(lambda: [encode(f) for f in frames])
    t_dec = _best(lambda: _decode_all(decoder_factory, wire))
    print(f"| {name} | {len(wire) / payload:.2f} | {payload / t_enc / 1e6:8.1f} | {payload / t_dec / 1e6:8.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--megabytes", type=float, default=4.0)
    ap.add_argument("--implementation", choices=IMPLEMENTATIONS, default="python",
                    help="HDLC encoder and decoder (default: python, the reference)")
    args = ap.parse_args()
    mb = args.megabytes
    hdlc_encode, HdlcDecoder = implementation(args.implementation)
    hdlc_heavy = bytes(range(32)) + b"\x7d\x7e"
    print("| data | wire/payload | encode MB/s | decode MB/s |")
    print("| --- | ---: | ---: | ---: |")
    _row(f"HDLC ({args.implementation}), random, ACCM 0", _frames(None, mb, 1), lambda f: hdlc_encode(f, 0),
         lambda: HdlcDecoder(accm=0, max_frame=FRAME + 8))
    _row(f"HDLC ({args.implementation}), escape-heavy, default ACCM", _frames(hdlc_heavy, mb, 2),
         lambda f: hdlc_encode(f, DEFAULT_ACCM), lambda: HdlcDecoder(max_frame=FRAME + 8))
    _row("SLIP, random", _frames(None, mb, 3), slip_encode, lambda: SlipDecoder(max_frame=FRAME + 8))
    _row("SLIP, escape-heavy", _frames(b"\xc0\xdb", mb, 4), slip_encode,
         lambda: SlipDecoder(max_frame=FRAME + 8))


if __name__ == "__main__":
    main()
