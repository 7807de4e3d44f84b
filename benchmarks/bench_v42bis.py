"""Benchmark: V.42bis encode and decode speed (MB/s) and compression ratio.

    python benchmarks/bench_v42bis.py [--size OCTETS] [--chunk OCTETS] [--repeat N]
                                      [--p1 2048] [--p2 32] [--reference]

Data: English text, MIME base64 of random octets and random octets (the
corpus of the tests, ``tests/v42bis_corpus.py``), fed in chunks of ``--chunk``
octets (1006: one SLIP/PPP frame), each chunk flushed as the link model does.
One encoder and one decoder per run, as for one direction of one call.
Speeds are the best of ``--repeat`` runs, in wall-clock time and in the
process's CPU time (the CPU figure is steadier on a shared machine); MB is
10^6 octets of uncompressed data.  ``--reference`` also times the pure-Python
reference on a tenth of the data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialsim.link.v42bis import implementation  # noqa: E402
from tests.v42bis_corpus import CORPORA, chunked  # noqa: E402


def best_of(repeat: int, run) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds, last result) of ``run()``."""
    wall = cpu = float("inf")
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = run()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, result


def measure(impl: str, data: bytes, chunk: int, repeat: int, p1: int, p2: int) -> dict:
    enc_cls, dec_cls = implementation(impl)
    chunks = chunked(data, chunk)

    def encode():
        enc = enc_cls(p1, p2)
        return [enc.encode(c) for c in chunks], enc

    def decode():
        dec = dec_cls(p1, p2)
        return [dec.decode(e) for e in encoded]

    e_wall, e_cpu, (encoded, enc) = best_of(repeat, encode)
    d_wall, d_cpu, decoded = best_of(repeat, decode)
    if b"".join(decoded) != data:
        raise SystemExit(f"{impl}: decoding did not give the data back")
    mb = len(data) / 1e6
    return {
        "enc_wall": mb / e_wall,
        "enc_cpu": mb / e_cpu,
        "dec_wall": mb / d_wall,
        "dec_cpu": mb / d_cpu,
        "ratio": sum(map(len, encoded)) / len(data),
        "transparent": enc.transparent,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2_000_000)
    ap.add_argument("--chunk", type=int, default=1006)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--p1", type=int, default=2048)
    ap.add_argument("--p2", type=int, default=32)
    ap.add_argument("--reference", action="store_true")
    args = ap.parse_args()
    runs = [("c", args.size, args.repeat)]
    if args.reference:
        runs.append(("python", args.size // 10, 1))
    print(
        f"V.42bis P1={args.p1} P2={args.p2}, {args.chunk}-octet chunks; "
        "MB/s as wall (cpu), best of the repeats"
    )
    for impl, size, repeat in runs:
        for name, make in CORPORA.items():
            r = measure(impl, make(size), args.chunk, repeat, args.p1, args.p2)
            mode = "transparent" if r["transparent"] else "compressed"
            print(
                f"{impl:6s} {name:7s} {size:>9d} octets  "
                f"encode {r['enc_wall']:6.1f} ({r['enc_cpu']:6.1f}) MB/s  "
                f"decode {r['dec_wall']:6.1f} ({r['dec_cpu']:6.1f}) MB/s  "
                f"ratio {r['ratio']:.4f}  ends {mode}"
            )


if __name__ == "__main__":
    main()
