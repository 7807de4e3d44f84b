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

import asyncio
import contextlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from dialsim.experiment.settings import link_config
from dialsim.experiment.world import IspWorld, isp_world, seed_streams
from dialsim.link.call import LinkConfig

__all__ = ["LiveWorld", "live_world", "modem_line"]


@dataclass
class LiveWorld:
    env: simpy.Environment
    world: IspWorld
    link: LinkConfig
    link_rng: np.random.Generator


def live_world(sc, workdir: Path, *, replication: int = 0) -> LiveWorld:
    """The ISP (with its maildrop filled) and link configuration of ``sc``, on a
    fresh simpy environment that a WallClock is to drive."""
    streams = seed_streams(sc.seed, replication)
    env = simpy.Environment()
    workdir.mkdir(parents=True, exist_ok=True)
    world = isp_world(env, sc, workdir, streams)
    return LiveWorld(env, world, link_config(sc), np.random.default_rng(streams["link"]))


def modem_registers(sc) -> dict[int, int]:
    """The virtual modem's factory S-registers from the scenario's call progress."""
    d = sc.link.dial
    return {6: min(255, max(2, round(d.dial_tone_wait))),
            7: min(255, max(1, round(d.carrier_wait))),
            11: min(255, max(50, round(d.dtmf_tone * 1000)))}


@contextlib.asynccontextmanager
async def modem_line(sc, *, isp_command: str | None = None, aliases: dict[str, str] | None = None,
                     log=None):
    """The world behind a virtual modem, on the wall clock of the running loop.

    Yields ``new_modem(fd) -> VirtualModem``: a modem on a DTE descriptor (a pty
    master, a socket) whose ``ATD`` of the scenario's number reaches the
    scenario's simulated ISP (or ``isp_command``'s program), and ``ATDT
    host:port`` a TCP service.  Everything is released on exit.
    """
    from dialsim.drivers.modem import IspProgram, PhoneBook, SimulatedIsp, VirtualModem
    from dialsim.drivers.wallclock import WallClock

    log = log or (lambda _t, _w, _d: None)
    with tempfile.TemporaryDirectory(prefix="dialsim-modem-") as scratch:
        world = live_world(sc, Path(scratch))
        clock = WallClock(world.env, asyncio.get_running_loop())
        answerer = IspProgram(isp_command) if isp_command else SimulatedIsp(world.world.nas)
        digits = re.sub(r"[^0-9*#A-D]", "", sc.link.phone_number.upper())
        book = PhoneBook({digits: answerer}, dict(aliases or {}))
        registers = modem_registers(sc)
        modems: list[VirtualModem] = []

        def new_modem(fd: int) -> VirtualModem:
            m = VirtualModem(clock, fd, book, world.link, world.link_rng,
                             registers=registers, log=log)
            modems.append(m)
            return m

        new_modem.clock = clock  # type: ignore[attr-defined]
        try:
            yield new_modem
        finally:
            for m in modems:
                m.hang_up()
                m.dte.close()
            if isinstance(answerer, IspProgram):
                answerer.release(clock)
            clock.stop()
