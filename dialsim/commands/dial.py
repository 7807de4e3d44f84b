"""``dialsim dial SCENARIO --port PORT [--direct] [--out DIR]``: a measured session.

PORT is a serial device (``/dev/ttyS0``, ``/dev/ttyUSB0``, a pty) or any pyserial
URL, ``dialsim://SCENARIO`` included.  dialsim types the dialer's AT commands
(``--direct`` skips them, for a line that is already connected), runs the
scenario's login chat, PPP or SLIP, the outbox and the POP3 strategy, hangs
up, and writes the same tables as ``dialsim run``, marked as measured.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_subcommand(sub) -> None:
    p = sub.add_parser("dial", help="dial a real (or virtual) modem and measure a session",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("scenario")
    p.add_argument("--port", required=True, help="serial device or pyserial URL (dialsim://...)")
    p.add_argument("--direct", action="store_true",
                   help="the line is already connected: send no AT commands")
    p.add_argument("--out", help="results directory (default results/<scenario name>-measured/)")
    p.add_argument("--baud", type=int, help="serial port speed (default: the scenario's serial_rate)")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_dial)


def open_port(url: str, baud: int):
    """An open pyserial port for a device path or URL; dialsim:// is registered here."""
    import serial

    if "dialsim.pyserial" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("dialsim.pyserial")
    return serial.serial_for_url(url, baudrate=baud, timeout=0, exclusive=None)


def cmd_dial(args) -> int:
    from rich.console import Console

    from dialsim.cli import _load
    from dialsim.experiment.measured import measure
    from dialsim.experiment.run import write_run
    from dialsim.experiment.settings import ignored_on_a_real_line
    from dialsim.results.summary import render_summary

    sc = _load(args.scenario)
    console = Console(stderr=True)
    try:
        ser = open_port(args.port, args.baud or int(sc.link.serial_rate))
    except Exception as e:  # serial.SerialException, OSError, ValueError
        print(f"dialsim: --port {args.port}: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet and not args.port.startswith("dialsim://"):
        for note in ignored_on_a_real_line(sc):
            console.print(f"[dim]note: {note}[/dim]")
    try:
        call = asyncio.run(measure(sc, ser, direct=args.direct, timeout=args.timeout))
    finally:
        ser.close()
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-measured"
    result = write_run(sc, out, [call.outcome], argv=sys.argv,
                       meta={"measured": True, "port": args.port, "direct": args.direct})
    if not args.quiet:
        Console().print(render_summary(result.summary))
        Console().print(f"results in [bold]{out}[/bold]")
    return 0
