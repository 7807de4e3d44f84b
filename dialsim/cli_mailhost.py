"""``dialsim mailhost``: the ISP's POP3 (RFC 1939) and SMTP (RFC 5321) servers on real sockets.

Scope: the command line of the mail host.  It builds a
:class:`dialsim.hosts.mailhost.MailHost` (one Maildir tree ``MAILDIR/<user>/``,
relay queue ``MAILDIR/.outbound/``, one accounts file) and serves it with the
asyncio driver :class:`dialsim.drivers.sockets.Service` on host TCP ports, so
that real mail programs (poplib, fetchmail, getmail, mpop, smtplib, swaks,
msmtp, a 1990s mail client) can use them.  SMTP clients from the subscriber
networks (loopback by default) may relay to foreign domains; others may only
send to the local domain (RFC 5321 section 7.1, no open relay).

    dialsim mailhost --maildir DIR --accounts FILE [--pop3 127.0.0.1:1110]
                     [--smtp 127.0.0.1:2525] [--domain isp.example]

Bad input (an unparsable address, an unreadable or group/other-readable
accounts file, a maildir that cannot be created, a port that cannot be bound)
stops with one line on stderr and exit status 2.  SIGINT/SIGTERM stop the
servers; open POP3 sessions are dropped without committing any DELE.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from collections.abc import Callable, Iterable

from dialsim.drivers.sockets import Service
from dialsim.hosts.mailhost import (
    DEFAULT_SUBSCRIBER_NETS,
    MailHost,
    MailHostConfig,
    MailHostError,
)

__all__ = ["add_subcommand", "cmd_mailhost", "parse_address"]

EXIT_BAD_INPUT = 2


def parse_address(text: str, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); port 0 means any free port."""
    host, sep, port_s = text.rpartition(":")
    if not sep or not host:
        raise MailHostError(f"{what} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:1110")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise MailHostError(f"{what} {text!r}: port must be a number 0..65535")
    if any(c.isspace() for c in host):
        raise MailHostError(f"{what} {text!r}: bad host name")
    return host, int(port_s)


# ---------------------------------------------------------------------------- command line


def _fmt(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve_forever(config: MailHostConfig, out: Callable[[str], None]) -> None:
    service = Service(MailHost(config))
    try:
        addrs = await service.start()
    except OSError as e:
        where = " ".join(getattr(e, "__notes__", []))
        raise MailHostError(f"cannot listen on {where}: {e.strerror or e}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parts = [f"{name.upper()} on {_fmt(a)}" for name, a in addrs.items()]
    out(
        f"dialsim mailhost: {', '.join(parts)}; maildir {config.maildir}; "
        f"domain {config.domain}; {len(config.accounts)} account(s)"
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await service.stop()
    out("dialsim mailhost: stopped")


def _configure(args: argparse.Namespace) -> MailHostConfig:
    pop3 = parse_address(args.pop3, "--pop3")
    smtp = parse_address(args.smtp, "--smtp")
    domain = args.domain.strip().lower()
    if not domain or any(c.isspace() or c in "@/" for c in domain):
        raise MailHostError(f"--domain {args.domain!r}: not a domain name")
    if args.login_delay < 0:
        raise MailHostError("--login-delay must not be negative")
    nets: Iterable[str] = args.subscriber_net or DEFAULT_SUBSCRIBER_NETS
    checked = []
    for n in nets:
        if n == "none":
            continue
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError:
            raise MailHostError(f"--subscriber-net {n!r}: not a network (e.g. 127.0.0.0/8)") from None
        checked.append(n)
    return MailHostConfig.from_paths(
        args.maildir,
        args.accounts,
        pop3=pop3,
        smtp=smtp,
        domain=domain,
        login_failure_delay=args.login_delay,
        subscriber_nets=tuple(checked),
    )


def cmd_mailhost(args: argparse.Namespace) -> int:
    """Handler of ``dialsim mailhost``: exit 0 after SIGINT/SIGTERM, 2 on bad input."""
    try:
        config = _configure(args)
        asyncio.run(_serve_forever(config, lambda line: print(line, flush=True)))
    except MailHostError as e:
        print(f"dialsim mailhost: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        pass
    return 0


def add_subcommand(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``mailhost`` to dialsim's sub-commands; its handler is ``args.func``."""
    p = subparsers.add_parser(
        "mailhost",
        help="run the ISP's POP3 and SMTP servers on real sockets",
        description="Run dialsim's POP3 and SMTP servers over a Maildir tree until SIGINT/SIGTERM.",
    )
    p.add_argument("--maildir", required=True, help="Maildir tree: DIR/<user>/, created if missing")
    p.add_argument("--accounts", required=True, help="user:password file, mode 0600")
    p.add_argument("--pop3", default="127.0.0.1:1110", help="POP3 listen address (HOST:PORT)")
    p.add_argument("--smtp", default="127.0.0.1:2525", help="SMTP listen address (HOST:PORT)")
    p.add_argument("--domain", default="isp.example", help="the local mail domain")
    p.add_argument(
        "--login-delay",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="delay before answering a failed POP3 login (default 2)",
    )
    p.add_argument(
        "--subscriber-net",
        action="append",
        metavar="CIDR",
        help="SMTP clients allowed to relay (repeatable; default loopback; 'none' for nobody)",
    )
    p.set_defaults(func=cmd_mailhost)
    return p
