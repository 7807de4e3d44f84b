"""``dialsim shell SCENARIO [--pcap FILE] [--allow HOST:PORT] [--out DIR] -- COMMAND [ARGS]``.

Runs COMMAND in a network namespace whose only interface is the modem line:
dialsim dials the scenario's ISP in real time, and every packet of COMMAND's
kernel TCP/IP crosses the simulated line as real PPP or SLIP frames.  COMMAND
reaches the ISP's mail host (``pop.DOMAIN``, ``mail.DOMAIN``), the host's own
loopback as 10.0.2.2 (as in slirp), and what ``--allow`` opens.  dialsim hangs up
when COMMAND exits, and exits with its status.  Needs root (run with sudo:
COMMAND then runs as the invoking user).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_subcommand(sub) -> None:
    p = sub.add_parser("shell", help="run a program behind the simulated modem (its own kernel TCP)",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("scenario")
    p.add_argument("--pcap", metavar="FILE", help="write the line's frames, both directions")
    p.add_argument("--allow", action="append", default=[], metavar="HOST:PORT",
                   help="also let the program reach this address (repeatable)")
    p.add_argument("--out", help="results directory (default results/<scenario name>-shell/)")
    p.add_argument("--online-timeout", type=float, default=120.0,
                   help="give up if the line is not up after this many seconds")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("command", nargs="*", help="the program and its arguments (after --)")
    p.set_defaults(func=cmd_shell)


def cmd_shell(args) -> int:
    import socket

    from dialsim.cli import _load
    from dialsim.commands.modem import _console_log, _host_port
    from dialsim.drivers.netns import NetnsError, check_can_create

    command = args.command
    if not command:
        print("dialsim: shell: give the program to run after --, e.g. -- fetchmail -v",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    sc = _load(args.scenario)
    try:
        allow = {(socket.gethostbyname(h), p) for h, p in
                 (_host_port(a, "--allow") for a in args.allow)}
        check_can_create()
    except (ValueError, OSError, NetnsError) as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-shell"
    try:
        return asyncio.run(run_shell(sc, command, allow=allow, pcap=args.pcap, out=out,
                                     online_timeout=args.online_timeout,
                                     log=_console_log(args.quiet)))
    except NetnsError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


async def run_shell(sc, command: list[str], *, allow: set[tuple[str, int]], pcap: str | None,
                    out: Path, online_timeout: float, log=None) -> int:
    """Dial, run ``command`` in the namespace until it exits, hang up, write the results;
    everything made is removed whatever happens.  Returns the command's exit status."""
    from dialsim.drivers.netns import NetNamespace
    from dialsim.drivers.wallclock import WallClock
    from dialsim.experiment.live import live_world
    from dialsim.experiment.shell import ShellLine, namespace_hosts

    loop = asyncio.get_running_loop()
    ns = NetNamespace(hosts=namespace_hosts(sc.isp.domain))
    proc: asyncio.subprocess.Process | None = None
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    status = 1
    try:
        with tempfile.TemporaryDirectory(prefix="dialsim-shell-") as scratch:
            live = live_world(sc, Path(scratch))
            clock = WallClock(live.env, loop)
            line = ShellLine(sc, clock, live, ns, allow=allow, capture=pcap is not None, log=log)
            clock.catch_up()
            try:
                await _wait_online(line, stop, online_timeout)
                proc = await asyncio.create_subprocess_exec(*ns.argv(command, **_invoker()),
                                                            start_new_session=True)
                status = await _wait_command(proc, stop)
            finally:
                clock.inject(line.close)
                await asyncio.sleep(0.05)
                clock.stop()
                _write_results(sc, line, out, pcap, command)
    finally:
        if proc is not None and proc.returncode is None:
            _kill_group(proc)
            await proc.wait()
        ns.delete()
    return status


async def _wait_online(line, stop: asyncio.Event, timeout: float) -> None:
    from dialsim.drivers.netns import NetnsError

    waiter = asyncio.ensure_future(line.first_online.wait())
    stopper = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({waiter, stopper}, timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if waiter not in done:
        raise NetnsError("the line did not come up" if stopper not in done else "interrupted")


async def _wait_command(proc, stop: asyncio.Event) -> int:
    waiter = asyncio.ensure_future(proc.wait())
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if waiter not in done:  # interrupted: the program goes, then the line
        _kill_group(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(waiter, 5)
        except TimeoutError:
            _kill_group(proc)
            await proc.wait()
        return 130
    return proc.returncode


def _kill_group(proc, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _invoker() -> dict[str, int]:
    """Run the program as the user who invoked sudo, not as root."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() == 0 and uid and uid != "0":
        return {"uid": int(uid), "gid": int(gid or uid)}
    return {}


def _write_results(sc, line, out: Path, pcap: str | None, command: list[str]) -> None:
    from dataclasses import asdict

    import pandas as pd

    from dialsim.experiment.capture import write_capture
    from dialsim.experiment.run import write_run
    from dialsim.experiment.world import ReplicationOutcome

    outcome = ReplicationOutcome(recorder=line.rec, stored={}, retrieved_count={},
                                 messages_lost=None, messages_duplicated=0,
                                 capture=line.capture, framing=sc.framing,
                                 seeds={"seed_sequence_entropy": [int(sc.seed), 0]})
    flows = pd.DataFrame([asdict(f) for f in line.kernel.flows.values()],
                         columns=["protocol", "src", "sport", "dst", "dport", "t_first_s",
                                  "t_last_s", "octets_up", "octets_down", "packets_up",
                                  "packets_down"])

    def extra(folder: Path) -> None:
        flows.to_parquet(folder / "flows.parquet", index=False)

    write_run(sc, out, [outcome], argv=sys.argv, extra_files=extra,
              meta={"measured": True, "shell_command": command})
    if pcap:
        write_capture(Path(pcap), outcome, secret=sc.subscriber.password)
