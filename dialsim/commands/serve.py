"""``dialsim serve SCENARIO [--pop3 H:P] [--smtp H:P]``: the ISP's mail behind the modem line.

Point an unmodified desktop mail client at the local ports (POP3 127.0.0.1:1110,
SMTP 127.0.0.1:2525 by default; user and password are the scenario's
subscriber's).  dialsim dials the scenario's ISP in real time and carries every
connection over the simulated line: the modem's rate, latency and drops apply,
and all connections share the one line, as they did on a real modem.  The
ports accept connections only while the line is up.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_subcommand(sub) -> None:
    p = sub.add_parser("serve", help="the ISP's POP3 and SMTP on local ports, behind the modem line",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("scenario")
    p.add_argument("--pop3", default="127.0.0.1:1110", metavar="HOST:PORT")
    p.add_argument("--smtp", default="127.0.0.1:2525", metavar="HOST:PORT")
    p.add_argument("--seed", type=int)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from dialsim.cli import _load
    from dialsim.commands.modem import _console_log, _host_port

    sc = _load(args.scenario, seed=args.seed)
    try:
        ports = {"pop3": _host_port(args.pop3, "--pop3"),
                 "smtp": _host_port(args.smtp, "--smtp")}
    except ValueError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(run_serve(sc, ports, log=_console_log(args.quiet)))
    except OSError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


async def run_serve(sc, ports: dict[str, tuple[str, int]], *, log=None,
                    stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop``)."""
    from dialsim.drivers.wallclock import WallClock
    from dialsim.experiment.live import live_world
    from dialsim.experiment.serve import LineService

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with tempfile.TemporaryDirectory(prefix="dialsim-serve-") as scratch:
        live = live_world(sc, Path(scratch))
        clock = WallClock(live.env, loop)
        service = LineService(sc, clock, live, ports, log=log)
        clock.catch_up()
        if log is not None:
            log(clock.now(), "ready", " ".join(f"{k}={h}:{p}" for k, (h, p) in ports.items()))
        try:
            await stop.wait()
        finally:
            clock.inject(service.close)
            clock.stop()
