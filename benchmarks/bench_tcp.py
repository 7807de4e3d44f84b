"""Benchmark: TCP bulk transfer between two NetStacks in memory (no simpy, no link model).

    python benchmarks/bench_tcp.py [--mib N] [--repeat R] [--against REV]

Host A connects to host B and sends N MiB (default 1) then closes; B reads
everything as it arrives.  Datagrams go straight from one stack's ``output`` to
the other's ``receive`` at the same virtual instant; virtual time only moves to
the next timer (delayed ACK) when neither side has anything to send.  So the
number is the cost of the IPv4 + TCP code itself: MiB per second of CPU time
(``time.process_time``, best of R runs: steadier than wall-clock time on a
machine shared with other work), and Python function calls per segment
(cProfile's total over one run, divided by the segments both sides sent).

``--against REV`` runs the same transfer on the dialsim package of a git
revision (``git archive`` into a scratch folder) and on this tree, each in a
fresh interpreter, alternating for ``--rounds`` rounds, so a before/after
comparison comes out of one run on one machine.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ((1500, {}), (296, {"initial_rto": 3.0, "clock_granularity": 0.5}))


def _ops(stack):
    """(receive, output) of a stack; the base revision named them receive_packet/packets_to_send."""
    if hasattr(stack, "packets_to_send"):  # revisions before the machine interface
        return stack.receive_packet, stack.packets_to_send
    return stack.receive, stack.output


def transfer(nbytes: int, mtu: int, tcp_options: dict) -> dict:
    """Move ``nbytes`` from A to B; returns the segment counts (raises if data is lost)."""
    from dialsim.proto.netstack import NetStack
    from dialsim.proto.tcp import Connected, DataReceived

    a = NetStack("10.0.0.1", mtu=mtu, rng=random.Random(1), tcp_options=tcp_options)
    b = NetStack("10.0.0.2", mtu=mtu, rng=random.Random(2), tcp_options=tcp_options)
    a_in, a_out = _ops(a)
    b_in, b_out = _ops(b)
    b.listen(110)
    payload = bytes(range(256)) * (nbytes // 256)
    ca = a.connect("10.0.0.2", 110, 0.0)
    ca.send(payload)  # queued in SYN-SENT; close() once connected (before, it would abort)
    cb = None
    got = 0
    now = 0.0
    while True:
        moved = 0
        for pkt in a_out(now):
            b_in(pkt, now)
            moved += 1
        for pkt in b_out(now):
            a_in(pkt, now)
            moved += 1
        for ev in b.events():
            cb = ev.conn
        if cb is not None:
            for ev in cb.events():
                if isinstance(ev, DataReceived):
                    got += len(ev.data)
        for ev in ca.events():
            if isinstance(ev, Connected):
                ca.close()
        if moved:
            continue
        deadlines = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
        if not deadlines or got == len(payload) and ca.state in ("FIN-WAIT-2", "TIME-WAIT"):
            break
        now = max(now, min(deadlines))
        a.on_timer(now)
        b.on_timer(now)
    if got != len(payload):
        raise SystemExit(f"transfer lost data: {got} of {len(payload)} octets arrived")
    return {
        "segments": ca.counters["segments_sent"] + cb.counters["segments_sent"],
        "data_segments": ca.counters["segments_sent"] - ca.counters["segments_retransmitted"],
    }


def measure(mib: float, repeat: int) -> list[dict]:
    rows = []
    nbytes = int(mib * 1024 * 1024)
    for mtu, opts in CASES:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.process_time()
            counts = transfer(nbytes, mtu, opts)
            best = min(best, time.process_time() - t0)
        prof = cProfile.Profile()
        prof.enable()
        transfer(nbytes, mtu, opts)
        prof.disable()
        calls = pstats.Stats(prof).total_calls
        rows.append({"mtu": mtu, "mib_s": nbytes / 2**20 / best, "calls": calls, **counts})
    return rows


@contextmanager
def revision_package(rev: str) -> Iterator[str]:
    """The dialsim package of git revision ``rev``, extracted into a scratch folder."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "dialsim"],
        check=True, capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(tar)) as tf:
            tf.extractall(tmp, filter="data")
        yield tmp


def run_json(script: str, package_root: str, args: list[str]) -> list[dict]:
    """Run ``script --json ARGS`` in a fresh interpreter on the dialsim package under
    ``package_root``; its printed JSON."""
    env = {**os.environ, "PYTHONPATH": f"{package_root}{os.pathsep}{Path(script).resolve().parent}"}
    out = subprocess.run(
        [sys.executable, script, "--json", *args],
        check=True, capture_output=True, text=True, env=env, cwd=package_root,
    ).stdout
    return json.loads(out)


def side_by_side(script: str, rev: str, args: list[str], rounds: int, best) -> tuple[list, list]:
    """Measure revision ``rev`` and this tree in turn, ``rounds`` times each (so a
    busy spell on a shared machine hits both alike); the best of each row by
    ``best(row, row) -> row``."""
    results: tuple[list, list] = ([], [])
    with revision_package(rev) as old:
        for _ in range(rounds):
            for out, root in zip(results, (old, str(ROOT)), strict=True):
                rows = run_json(script, root, args)
                out[:] = [best(a, b) for a, b in zip(out, rows, strict=True)] if out else rows
    return results


def show(label: str, rows: list[dict]) -> None:
    for r in rows:
        print(
            f"{label:>10}  mtu {r['mtu']:4d}: {r['mib_s']:6.2f} MiB/s (CPU)  "
            f"{r['segments']:6d} segments ({r['data_segments']} with data)  "
            f"{r['calls'] / r['segments']:6.1f} Python calls/segment"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", metavar="REV", help="also measure this git revision")
    ap.add_argument("--rounds", type=int, default=3, help="with --against: alternate runs")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.json:
        print(json.dumps(measure(args.mib, args.repeat)))
        return
    if not args.against:
        print(f"TCP bulk transfer of {args.mib:g} MiB between two NetStacks, best of {args.repeat}")
        show("this tree", measure(args.mib, args.repeat))
        return
    print(
        f"TCP bulk transfer of {args.mib:g} MiB between two NetStacks, best of "
        f"{args.repeat} x {args.rounds} rounds, alternating {args.against} and this tree"
    )
    old, new = side_by_side(
        __file__, args.against, ["--mib", str(args.mib), "--repeat", str(args.repeat)], args.rounds,
        lambda a, b: a if a["mib_s"] >= b["mib_s"] else b,
    )
    show(args.against, old)
    show("this tree", new)


if __name__ == "__main__":
    main()
