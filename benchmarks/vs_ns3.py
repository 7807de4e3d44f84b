"""Benchmark: a bulk transfer in dialsim and in ns-3, side by side, in wall ms per MiB.

    python benchmarks/vs_ns3.py [--mib 1] [--rounds 5] [--mtu 1500]

The same transfer both ways, on the same machine, interleaved round by round:

- ns-3 (Debian's ``libns3-dev``, 3.37): ``benchmarks/ns3_bulk.cc``, compiled here
  with g++ and pkg-config -- two nodes on a point-to-point link of 28,800 bit/s
  with V.34's one-way latency, TCP NewReno (no SACK, timestamps or window
  scaling, 16 KiB receive buffer, MSS = MTU - 40), a BulkSend of ``--mib`` MiB
  to a PacketSink.  Its figure is the wall time of ``Simulator::Run()``.
- dialsim: one replication of a scenario with one message of ``--mib`` MiB of
  incompressible data (base64 of random octets) waiting at the ISP, V.34 at
  28,800 bit/s, error correction off (so no V.42bis), PPP with the same MTU;
  the subscriber dials, logs in, RETRs it and quits.  Its figure is the wall
  time of the whole replication (dial, PPP, POP3 and all), which only makes
  dialsim's figure larger.

Each figure is divided by the MiB transferred; the script prints the medians
and the ratio dialsim / ns-3.  It is a benchmark, not a test: without ns-3
(``apt install libns3-dev g++ pkg-config``) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NS3_MODULES = ("ns3-core", "ns3-network", "ns3-internet", "ns3-point-to-point", "ns3-applications")
V34_LATENCY_MS = 62  # dialsim.link.profiles: v34 latency_one_way_s

SCENARIO = """
name: vs-ns3
description: one MiB-sized incompressible message over V.34 28800, no V.42, PPP
seed: 7
replications: 1
duration: {duration} s
framing: ppp
link:
  profile: v34
  connect_rate: 28.8k
  error_correction: false
  mtu: {mtu}
subscriber:
  user: alice
  password: tanstaaf
isp:
  maildrop:
    messages: 1
    content: random
    size: {{distribution: fixed, median: {octets}}}
"""


def ns3_flags() -> list[str] | str:
    """Compiler and linker flags for ns-3, or why there are none."""
    if shutil.which("g++") is None or shutil.which("pkg-config") is None:
        return "g++ or pkg-config is not installed"
    got = subprocess.run(["pkg-config", "--cflags", "--libs", *NS3_MODULES],
                         capture_output=True, text=True)
    if got.returncode != 0:
        return "ns-3 is not installed (pkg-config knows no ns3-core: apt install libns3-dev)"
    flags = []
    for f in got.stdout.split():
        if f == "-I/usr\\;":  # a stray entry in Debian's .pc files
            continue
        if f.startswith("/") and f.endswith(".so") and not os.path.exists(f):
            continue  # Debian's .pc names libgsl.so, which only libgsl-dev installs
        flags.append(f)
    return flags


def build_ns3(into: Path) -> Path | str:
    flags = ns3_flags()
    if isinstance(flags, str):
        return flags
    exe = into / "ns3_bulk"
    got = subprocess.run(["g++", "-O2", "-std=c++17", str(HERE / "ns3_bulk.cc"), "-o", str(exe),
                          *flags], capture_output=True, text=True)
    if got.returncode != 0:
        return f"the ns-3 program did not build:\n{got.stderr[-2000:]}"
    return exe


def run_ns3(exe: Path, octets: int, mtu: int) -> tuple[float, int]:
    """(wall ms of Simulator::Run, octets received)."""
    out = subprocess.run([str(exe), f"--bytes={octets}", "--rate=28800bps",
                          f"--delay={V34_LATENCY_MS}ms", f"--mtu={mtu}"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"bytes=(\d+) simulated_s=([\d.]+) wall_ms=([\d.]+)", out)
    if m is None:
        raise SystemExit(f"vs_ns3: unexpected output from the ns-3 program: {out!r}")
    return float(m.group(3)), int(m.group(1))


def dialsim_scenario(octets: int, mtu: int):
    from dialsim.scenario.load import scenario_from_text

    duration = 120 + octets * 10 / 28800 * 1.5  # dial and login, then the line's time, with room
    return scenario_from_text(SCENARIO.format(duration=int(duration), mtu=mtu, octets=octets))


def run_dialsim(sc) -> tuple[float, int]:
    """(wall ms of one replication, octets retrieved)."""
    from dialsim.experiment.world import run_replication

    t0 = time.perf_counter()
    out = run_replication(sc, 0)
    wall = (time.perf_counter() - t0) * 1e3
    return wall, sum(s.get("octets_retrieved", 0) for s in out.recorder.sessions)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=float, default=1.0, help="MiB transferred (default 1)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mtu", type=int, default=1500)
    a = ap.parse_args()
    octets = int(a.mib * (1 << 20))
    with tempfile.TemporaryDirectory(prefix="dialsim-ns3-") as tmp:
        exe = build_ns3(Path(tmp))
        if isinstance(exe, str):
            print(f"vs_ns3: skipped: {exe}")
            return 0
        sc = dialsim_scenario(octets, a.mtu)
        run_dialsim(sc)  # warm up: imports, first-use caches
        run_ns3(exe, octets, a.mtu)
        print(f"load average before: {os.getloadavg()}")
        ns3_ms, dialsim_ms = [], []
        for r in range(a.rounds):
            ms, got = run_ns3(exe, octets, a.mtu)
            ns3_ms.append(ms / (got / (1 << 20)))
            ms, got = run_dialsim(sc)
            if got < octets - 8:  # random_message comes within 4 octets of the size
                raise SystemExit(f"vs_ns3: dialsim retrieved {got} of {octets} octets")
            dialsim_ms.append(ms / (got / (1 << 20)))
            print(f"round {r}: ns-3 {ns3_ms[-1]:8.1f} wall ms/MiB   dialsim {dialsim_ms[-1]:8.1f} wall ms/MiB")
        print(f"load average after: {os.getloadavg()}")
    n, d = statistics.median(ns3_ms), statistics.median(dialsim_ms)
    print(f"median: ns-3 {n:.1f} wall ms per MiB, dialsim {d:.1f} wall ms per MiB "
          f"(message {octets} octets incl. base64, MTU {a.mtu})")
    print(f"dialsim / ns-3: {d / n:.2f} times the wall time per MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
