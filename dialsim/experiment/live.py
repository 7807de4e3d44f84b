"""A scenario's world for the real-time modes: the same ISP and link as a simulated run.

``dialsim modem`` (and later ``serve`` and ``shell``) run the scenario's
simulated ISP -- terminal server, PPP or SLIP, the mail host with its
maildrop -- and its link model on a :class:`~dialsim.drivers.wallclock.WallClock`
instead of simpy's virtual clock.  This module builds that world from a
scenario exactly as :func:`dialsim.experiment.world.run_replication` does
(same seed streams, same maildrop), so a real-time session and its
simulation face the same ISP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from dialsim.experiment.world import IspHost, _fill_maildrop, _link_config, seed_streams
from dialsim.link.call import LinkConfig
from dialsim.results.recorder import Recorder

__all__ = ["LiveWorld", "live_world"]


@dataclass
class LiveWorld:
    env: simpy.Environment
    isp: IspHost
    link: LinkConfig
    link_rng: np.random.Generator
    recorder: Recorder


def live_world(sc, workdir: Path, *, replication: int = 0) -> LiveWorld:
    """The ISP (with its maildrop filled) and link configuration of ``sc``, on a
    fresh simpy environment that a WallClock is to drive."""
    streams = seed_streams(sc.seed, replication)
    env = simpy.Environment()
    rec = Recorder(replication)
    workdir.mkdir(parents=True, exist_ok=True)
    isp = IspHost(env, sc, workdir, streams, rec)
    stored = _fill_maildrop(isp, sc, np.random.default_rng(streams["mail"]), Path(sc.source_dir))
    isp.stored_sha = {m.sha256: m for m in stored.values()}
    if sc.isp.incoming is not None:
        env.process(isp.incoming())
    return LiveWorld(env, isp, _link_config(sc), np.random.default_rng(streams["link"]), rec)
