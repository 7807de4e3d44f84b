"""``dialsim doctor SCENARIO [--port PORT | --host HOST [--pop3-port N]]``: is the mail reachable?

The ISP support page's three checks -- the server answers a ping, POP3 answers
on port 110, the password is taken -- each with a verdict and the next step to
try.  Without options they run on the scenario's simulated line (in an
instant of wall time); ``--port`` dials a real (or ``dialsim://``) modem and
runs them live; ``--host`` checks a server over this machine's own network.
"""

from __future__ import annotations

import asyncio
import random
import sys

EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 1


def add_subcommand(sub) -> None:
    p = sub.add_parser("doctor", help="ping, POP3 greeting and login checks, with next steps",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("scenario")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="dial this serial port or pyserial URL and check live")
    where.add_argument("--host", help="check this POP3 server directly, no modem")
    p.add_argument("--pop3-port", type=int, default=110)
    p.add_argument("--user", help="the POP3 user (default: the scenario's subscriber)")
    p.add_argument("--password", help="the POP3 password (default: the scenario's)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    from rich.console import Console

    from dialsim.cli import _load

    sc = _load(args.scenario)
    console = Console()
    verdicts = []

    def show(v) -> None:
        verdicts.append(v)
        mark = "[green]ok[/green]  " if v.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {v.check:<6} {v.detail}")
        if not v.ok and v.next_step:
            console.print(f"       next: {v.next_step}")

    user = args.user or sc.subscriber.user
    password = args.password if args.password is not None else sc.subscriber.password
    if args.host:
        from dialsim.experiment.doctor import direct_checkup

        direct_checkup(args.host, args.pop3_port, user, password, show)
    elif args.port:
        rc = _live(sc, args, user, password, show)
        if rc:
            return rc
    else:
        _simulated(sc, user, password, show)
    return 0 if verdicts and all(v.ok for v in verdicts) else EXIT_CHECK_FAILED


def _settings(sc, user: str, password: str, *, real_line: bool):
    from dataclasses import replace

    from dialsim.experiment import settings

    s = settings.real_line_subscriber_settings(sc) if real_line else settings.subscriber_settings(sc)
    return replace(s, user=user, password=password)


def _simulated(sc, user: str, password: str, show) -> None:
    import tempfile
    from pathlib import Path

    import numpy as np
    import simpy

    from dialsim.experiment.doctor import checkup
    from dialsim.experiment.settings import link_config
    from dialsim.experiment.world import isp_world, seed_streams

    env = simpy.Environment()
    streams = seed_streams(sc.seed, 0)
    with tempfile.TemporaryDirectory(prefix="dialsim-doctor-") as tmp:
        world = isp_world(env, sc, Path(tmp), streams)
        link, rng = link_config(sc), np.random.default_rng(streams["link"])
        env.process(checkup(env, lambda: world.nas.dial(link, rng, lambda *_: None),
                            _settings(sc, user, password, real_line=False),
                            rng=random.Random(sc.seed), on_verdict=show))
        env.run(until=3600)


def _live(sc, args, user: str, password: str, show) -> int:
    from dialsim.commands.dial import open_port
    from dialsim.drivers.serialline import SerialLine
    from dialsim.drivers.wallclock import WallClock
    from dialsim.experiment.doctor import checkup
    from dialsim.experiment.measured import dial_number

    try:
        ser = open_port(args.port, int(sc.link.serial_rate))
    except Exception as e:  # serial.SerialException, OSError
        print(f"dialsim: --port {args.port}: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT

    async def run() -> None:
        import simpy

        env = simpy.Environment()
        clock = WallClock(env, asyncio.get_running_loop())
        line = SerialLine(clock, ser)
        story = env.process(checkup(env, lambda: line.dial(dial_number(sc)),
                                    _settings(sc, user, password, real_line=True),
                                    rng=random.Random(sc.seed), on_verdict=show))
        await clock.run_until(story, timeout=300)
        line.close()
        clock.stop()

    try:
        asyncio.run(run())
    finally:
        ser.close()
    return 0
