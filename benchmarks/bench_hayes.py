"""Benchmark: octets per second through the virtual Hayes modem in online data state.

    python benchmarks/bench_hayes.py [--megabytes N]

Both directions (DTE -> line and line -> DTE) in chunks of 16, 256 and 4096
octets, and the worst case for escape detection ("+++" after silence, held
back, then released by the next octet).  Also command lines per second.
Prints one line per case.
"""

from __future__ import annotations

import argparse
import time

from dialsim.proto.hayes import HayesModem


def online_modem() -> HayesModem:
    m = HayesModem()
    m.receive(b"ATE0DT5551234\r", 0.0)
    m.connected(28800, 1.0, "ARQ/V34/LAPM/V42BIS")
    m.output(1.0)
    m.events()
    return m


def to_line(total: int, size: int) -> float:
    m = online_modem()
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    n = total // size
    t = 2.0
    start = time.perf_counter()
    for _ in range(n):
        m.receive(data, t)
        t += 0.001
        m.line_output(t)
    return n * size / (time.perf_counter() - start)


def held_escapes(pairs: int) -> float:
    """The worst case for escape detection: "+++" after silence (held back), then
    one octet within the guard time that releases it."""
    m = online_modem()
    t = 2.0
    start = time.perf_counter()
    for _ in range(pairs):
        m.receive(b"+++", t)
        m.receive(b"x", t + 0.01)
        t += 1.02
        m.line_output(t)
    assert m.state.value == "online_data"
    return pairs * 4 / (time.perf_counter() - start)


def to_dte(total: int, size: int) -> float:
    m = online_modem()
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    n = total // size
    start = time.perf_counter()
    for i in range(n):
        m.line_receive(data, 2.0 + i * 0.001)
        m.output(0.0)
    return n * size / (time.perf_counter() - start)


def command_lines(count: int) -> float:
    m = HayesModem()
    line = b"ATE1V1X4S0=0&C1&D2S7?\r"
    start = time.perf_counter()
    for _ in range(count):
        m.receive(line, 0.0)
        m.output(0.0)
        m.events()
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--megabytes", type=float, default=20.0)
    args = ap.parse_args()
    total = int(args.megabytes * 1e6)
    for size in (16, 256, 4096):
        print(f"DTE -> line, {size:5d}-octet chunks: {to_line(total, size) / 1e6:8.1f} MB/s")
        print(f"line -> DTE, {size:5d}-octet chunks: {to_dte(total, size) / 1e6:8.1f} MB/s")
    print(f"DTE -> line, '+++' held then released: {held_escapes(100_000) / 1e6:8.2f} MB/s")
    print(f"command lines: {command_lines(20000):,.0f} per second")


if __name__ == "__main__":
    main()
