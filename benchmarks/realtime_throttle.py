"""Benchmark: how faithfully the real-time link throttles real octets.

    python benchmarks/realtime_throttle.py [--seconds 30] [--rate 28800] [--ec]

A program writes into one end of a pty as fast as the pty takes it; the octets
cross a call of the link model run on the wall clock (the same
``Direction.transmit`` the simulation uses, driven by ``WallClock``) and come
out of a second pty.  It prints:

- the achieved byte rate at the far end over the run, against the rate the
  model itself computes for the same writes (its last delivery time);
- the latency error of every delivery: the wall time the octets left the far
  pty's master minus the model's delivery time (p50, p95, p99, max) -- never
  negative, since a delivery is released no earlier than its model time;
- the machine's load average, for the conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tty

import numpy as np
import simpy

from dialsim.drivers.dte import attach_port
from dialsim.drivers.wallclock import WallClock
from dialsim.link.call import LinkConfig, connected_call


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=28800.0)
    ap.add_argument("--ec", action="store_true", help="V.42 error correction (no V.42bis)")
    a = ap.parse_args()
    cfg = LinkConfig(profile="v34", connect_rate_bps=a.rate, error_correction=a.ec,
                     compression=False)
    print(f"load average before: {os.getloadavg()}")
    result = asyncio.run(_run(cfg, a.seconds))
    print(f"load average after: {os.getloadavg()}")
    wall_rate = result["octets"] / result["wall_s"]
    model_rate = result["octets"] / result["model_s"]
    late = sorted(result["late"])
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))]  # noqa: E731
    print(f"line {a.rate:.0f} bit/s, {'V.42' if a.ec else 'async'}: "
          f"{result['deliveries']} deliveries")
    note = (f"; line rate {cfg.connect_rate_bps / 10:,.0f} B/s (async: 10 bits per octet)"
            if not cfg.error_correction else "")
    print(f"achieved {wall_rate:,.1f} B/s at the far end ({result['octets']} octets in "
          f"{result['wall_s']:.2f} s of a {result['run_s']:.0f} s run); the model's delivery "
          f"times for them: {model_rate:,.1f} B/s; ratio {wall_rate / model_rate:.4f}{note}")
    print(f"latency error ms: p50 {1e3 * q(0.5):.2f} p95 {1e3 * q(0.95):.2f} "
          f"p99 {1e3 * q(0.99):.2f} max {1e3 * late[-1]:.2f} mean {1e3 * statistics.mean(late):.2f}")


async def _run(cfg: LinkConfig, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    env = simpy.Environment()
    clock = WallClock(env, loop)
    call = connected_call(env, cfg, np.random.default_rng(1))
    (am, aslave), (bm, bslave) = os.openpty(), os.openpty()
    for fd in (aslave, bslave):
        tty.setraw(fd)
    late: list[float] = []
    octets = [0]
    attach_port(clock, call.subscriber, am)

    marks: list[tuple[float, int]] = []

    def delivered(t: float, data: bytes) -> None:
        late.append(clock.now() - t)
        octets[0] += len(data)
        marks.append((t, clock.now(), len(data)))

    attach_port(clock, call.isp, bm, on_delivery=delivered)
    # The programs on the ptys: a writer that writes as fast as the pty takes it
    # (flow control holds it back when the modem's buffer is full) and a reader.
    writer = subprocess.Popen(["dd", "if=/dev/urandom", f"of={os.ttyname(aslave)}", "bs=256"],
                              stderr=subprocess.DEVNULL)
    reader = subprocess.Popen(["cat", os.ttyname(bslave)], stdout=subprocess.DEVNULL)
    t0 = clock.now()
    await asyncio.sleep(seconds)
    wall = clock.now() - t0
    for p in (writer, reader):
        p.kill()
        p.wait()
    # Rates between the first and the last delivery (the octets after the first):
    # the far program's view, and the model's own delivery times for the same octets.
    (m0, w0, _), (m1, w1, _) = marks[0], marks[-1]
    after_first = sum(n for _m, _w, n in marks[1:])
    return {"octets": after_first, "deliveries": len(late), "late": late, "wall_s": w1 - w0,
            "model_s": m1 - m0, "run_s": wall}


if __name__ == "__main__":
    main()
