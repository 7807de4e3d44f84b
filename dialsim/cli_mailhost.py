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
                     [--auth-delay 2] [--login-delay 0] [--postmaster USER]
                     [--max-connections 200] [--max-connections-per-address 20]
                     [--tls-cert PEM [--tls-key PEM] | --no-tls]

Bad input (an unparsable address, an unreadable or group/other-readable
accounts file or a bad line in it, a maildir that cannot be created, a port
that cannot be bound, a certificate that cannot be loaded) stops with one line
on stderr and exit status 2.  Failed logins are logged on stderr (never the
password).  SIGINT/SIGTERM stop the servers gracefully: every open session is
told (SMTP ``421``, POP3 ``-ERR [SYS/TEMP]``), a message still arriving is not
stored and no DELE is committed, a delivery or commit already under way
completes; then the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from dialsim.drivers.sockets import Service
from dialsim.hosts.mailhost import (
    DEFAULT_SUBSCRIBER_NETS,
    MailHost,
    MailHostConfig,
    MailHostError,
)
from dialsim.hosts.tlscert import TlsSetupError

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


def _tls_line(host: MailHost) -> str:
    cert = host.certificate
    if cert is None:
        return "no TLS"
    how = {"given": "", "existing": ", self-signed, kept from before"}.get(
        cert.made_with, f", self-signed, made with {cert.made_with}"
    )
    return f"STLS/STARTTLS certificate {cert.cert}{how}"


async def _serve_forever(config: MailHostConfig, out: Callable[[str], None]) -> None:
    try:
        host = MailHost(config)
    except TlsSetupError as e:
        raise MailHostError(str(e)) from None
    service = Service(host)
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
        f"domain {config.domain}; {len(config.accounts)} account(s); {_tls_line(host)}"
    )
    try:
        await stop.wait()
    finally:
        await service.stop()  # a second SIGTERM meanwhile changes nothing
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    out("dialsim mailhost: stopped")


def _configure(args: argparse.Namespace) -> MailHostConfig:
    pop3 = parse_address(args.pop3, "--pop3")
    smtp = parse_address(args.smtp, "--smtp")
    domain = args.domain.strip().lower()
    if not domain or any(c.isspace() or c in "@/" for c in domain):
        raise MailHostError(f"--domain {args.domain!r}: not a domain name")
    for name in ("auth_delay", "login_delay"):
        if getattr(args, name) < 0:
            raise MailHostError(f"--{name.replace('_', '-')} must not be negative")
    for name in ("max_connections", "max_connections_per_address"):
        if getattr(args, name) < 1:
            raise MailHostError(f"--{name.replace('_', '-')} must be at least 1")
    if args.tls_key and not args.tls_cert:
        raise MailHostError("--tls-key needs --tls-cert")
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
        auth_delay=args.auth_delay,
        login_delay=args.login_delay,
        subscriber_nets=tuple(checked),
        max_connections=args.max_connections,
        max_per_address=args.max_connections_per_address,
        tls=not args.no_tls,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        postmaster=args.postmaster,
    )


def cmd_mailhost(args: argparse.Namespace) -> int:
    """Handler of ``dialsim mailhost``: exit 0 after SIGINT/SIGTERM, 2 on bad input."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="dialsim mailhost: %(message)s"
    )
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
        "--auth-delay",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="hold every answer to POP3 PASS/APOP this long, right or wrong (default 2)",
    )
    p.add_argument(
        "--login-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="RFC 2449 LOGIN-DELAY: least time between two logins of one user (default 0)",
    )
    p.add_argument("--postmaster", metavar="USER",
                   help="the account that reads postmaster's mail (default: Maildir 'postmaster')")
    p.add_argument("--max-connections", type=int, default=200, metavar="N",
                   help="concurrent connections in all (default 200)")
    p.add_argument("--max-connections-per-address", type=int, default=20, metavar="N",
                   help="concurrent connections from one client address (default 20)")
    p.add_argument("--tls-cert", metavar="PEM",
                   help="certificate for STLS/STARTTLS (default: self-signed, kept in the maildir)")
    p.add_argument("--tls-key", metavar="PEM", help="its private key (default: in --tls-cert)")
    p.add_argument("--no-tls", action="store_true", help="offer neither STLS nor STARTTLS")
    p.add_argument(
        "--subscriber-net",
        action="append",
        metavar="CIDR",
        help="SMTP clients allowed to relay (repeatable; default loopback; 'none' for nobody)",
    )
    p.set_defaults(func=cmd_mailhost)
    return p
