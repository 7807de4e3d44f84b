"""Profile: where one replication's time goes, summed by module (cProfile self time).

    python benchmarks/profile_by_module.py [--bulk MIB | SCENARIO] [--top 20]

With ``--bulk`` the replication is vs_ns3.py's bulk transfer of MIB MiB (V.34
28800, no V.42, PPP); otherwise one replication of SCENARIO (default the
quick start).  One untimed replication runs first.  Prints, per module (or
builtin), its share of the profiled self time and its calls per datagram frame,
for finding the layer that a speed-up should go after.  cProfile slows Python
calls more than C ones, so the shares lean towards the Python layers.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", nargs="?", default=str(HERE.parent / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--bulk", type=float, default=None, help="vs_ns3's bulk transfer of this many MiB")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    from dialsim.experiment.world import run_replication

    if a.bulk is not None:
        sys.path.insert(0, str(HERE))
        import vs_ns3

        sc = vs_ns3.dialsim_scenario(int(a.bulk * (1 << 20)), 1500)
    else:
        from dialsim.scenario.load import load_scenario

        sc = load_scenario(a.scenario)
    run_replication(sc, 999 if a.bulk is None else 0)
    prof = cProfile.Profile()
    prof.enable()
    out = run_replication(sc, 0)
    prof.disable()
    # IP datagrams over the line, both ways (each is one PPP or SLIP frame)
    frames = sum(s.get("down_packets", 0) + s.get("up_packets", 0) for s in out.recorder.sessions)
    self_time: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (path, _line, name), (_cc, nc, tt, _ct, _callers) in pstats.Stats(prof).stats.items():
        if "/dialsim/" in path:
            key = path.split("/dialsim/")[-1]
        elif "simpy" in path:
            key = "simpy"
        elif path == "~":
            key = f"builtin {name}"
        else:
            key = Path(path).name
        self_time[key] += tt
        calls[key] += nc
    total = sum(self_time.values())
    per = (f"{frames} datagram frames, {sum(calls.values()) / frames:.1f} calls per frame"
           if frames else "no datagram count in the sessions table")
    print(f"profiled self time {total * 1e3:.0f} ms; {per}")
    for key, t in self_time.most_common(a.top):
        cpf = f"{calls[key] / frames:6.1f} calls/frame" if frames else ""
        print(f"{key:45s} {t * 1e3:8.1f} ms {100 * t / total:5.1f}%  {cpf}")


if __name__ == "__main__":
    main()
