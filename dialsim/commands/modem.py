"""``dialsim modem SCENARIO (--pty PATH | --listen HOST:PORT)``: a virtual Hayes modem.

A terminal program, pppd, an emulator's serial port or any pyserial program
opens PATH (a symlink to a pty's slave) or connects to HOST:PORT, types AT
commands, and dials: the scenario's phone number reaches the scenario's
simulated ISP (or ``--isp-command``'s program), ``ATDT host:port`` a TCP
service, at the modem's real speed on the scenario's link model.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tty
from collections.abc import Callable

EXIT_BAD_INPUT = 2


def add_subcommand(sub) -> None:
    p = sub.add_parser(
        "modem", help="a virtual Hayes modem on a pty or TCP port, on the scenario's line",
        description=__doc__.split("\n\n", 1)[1])
    p.add_argument("scenario")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", metavar="PATH", help="create a pty; PATH becomes a symlink to it")
    where.add_argument("--listen", metavar="HOST:PORT",
                       help="serve the modem on a TCP port (DOSBox nullmodem, VICE)")
    p.add_argument("--isp-command", metavar="CMD",
                   help="hand answered calls to this ISP-side program on a pty (e.g. slirp)")
    p.add_argument("--phonebook", metavar="FILE", help="NUMBER = HOST:PORT lines")
    p.add_argument("--seed", type=int)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_modem)


def _host_port(text: str, option: str = "--listen") -> tuple[str, int]:
    m = re.fullmatch(r"\[?([^\]]*)\]?:(\d{1,5})", text)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise ValueError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:2323")
    return m.group(1) or "127.0.0.1", int(m.group(2))


def cmd_modem(args) -> int:
    from dialsim.cli import _load
    from dialsim.drivers.modem import read_phonebook

    sc = _load(args.scenario, seed=args.seed)
    try:
        listen = _host_port(args.listen) if args.listen else None
        aliases = read_phonebook(args.phonebook) if args.phonebook else {}
    except (ValueError, OSError) as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.pty and os.path.lexists(args.pty) and not os.path.islink(args.pty):
        print(f"dialsim: --pty {args.pty}: exists and is not a symlink; choose another path",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    log = _console_log(args.quiet)
    try:
        asyncio.run(run_modem(sc, pty_path=args.pty, listen=listen, isp_command=args.isp_command,
                              aliases=aliases, log=log))
    except OSError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _console_log(quiet: bool) -> Callable[[float, str, str], None]:
    from rich.console import Console

    console = Console(stderr=True)

    def log(t: float, what: str, detail: str) -> None:
        if not quiet:
            console.print(f"[dim]{t:9.3f}[/dim] {what:<10} {detail}")

    return log


async def run_modem(sc, *, pty_path: str | None = None, listen: tuple[str, int] | None = None,
                    isp_command: str | None = None, aliases: dict[str, str] | None = None,
                    log=None, ready: Callable[[str], None] | None = None,
                    stop: asyncio.Event | None = None) -> None:
    """Serve the virtual modem until SIGINT/SIGTERM (or ``stop`` is set).

    ``ready(where)`` is called once the pty or the port exists."""
    from dialsim.experiment.live import modem_line

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log = log or (lambda _t, _w, _d: None)
    async with modem_line(sc, isp_command=isp_command, aliases=aliases, log=log) as new_modem:
        async with _dte(pty_path, listen, new_modem, new_modem.clock, ready):
            log(new_modem.clock.now(), "ready", pty_path or f"{listen[0]}:{listen[1]}")
            await stop.wait()


@contextlib.asynccontextmanager
async def _dte(pty_path, listen, new_modem, clock, ready):
    if pty_path is not None:
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pty_path)
        os.symlink(name, pty_path)
        modem = new_modem(master)
        if ready:
            ready(pty_path)
        try:
            yield
        finally:
            modem.dte.close()
            os.close(master)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pty_path)
        return
    server = socket.create_server(listen, reuse_port=False)
    server.setblocking(False)
    current: dict = {}

    def accept() -> None:
        conn, _addr = server.accept()
        old = current.get("modem")
        if old is not None and not old.dte.closed:
            conn.close()  # one DTE at a time, as one serial port
            return
        current["conn"] = conn
        current["modem"] = new_modem(conn.fileno())

    clock.loop.add_reader(server.fileno(), accept)
    if ready:
        host, port = server.getsockname()[:2]
        ready(f"{host}:{port}")
    try:
        yield
    finally:
        clock.loop.remove_reader(server.fileno())
        server.close()
        if "conn" in current:
            current["modem"].dte.close()
            current["conn"].close()
