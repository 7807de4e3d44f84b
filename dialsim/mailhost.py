"""``dialsim mailhost``: the ISP's POP3 (RFC 1939) and SMTP (RFC 5321) servers on real sockets.

Scope: runs dialsim's sans-IO :class:`~dialsim.proto.pop3.Pop3Server` and
:class:`~dialsim.proto.smtp.SmtpServer` with the asyncio driver of
:mod:`dialsim.drivers.sockets` on host TCP ports, over one Maildir tree
(``MAILDIR/<user>/``, relay queue ``MAILDIR/.outbound/``) and one accounts file,
so that real mail programs (poplib, fetchmail, getmail, smtplib, swaks, a
1990s mail client) can use them.  SMTP clients from the subscriber networks
(loopback by default) may relay to foreign domains; others may only send to
the local domain (RFC 5321 section 7.1, no open relay).

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
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dialsim.drivers.sockets import Connection, abort_all, peer_address, serve
from dialsim.mail.accounts import Accounts, AccountsFileError
from dialsim.mail.delivery import MaildirDelivery
from dialsim.mail.maildrop import MaildirStore
from dialsim.proto.pop3 import Pop3Server
from dialsim.proto.smtp import SmtpServer

__all__ = [
    "MailHostError",
    "MailHostConfig",
    "MailHost",
    "MailHostThread",
    "parse_address",
    "add_subcommand",
    "cmd_mailhost",
    "main",
]

EXIT_BAD_INPUT = 2
DEFAULT_SUBSCRIBER_NETS = ("127.0.0.0/8", "::1/128")


class MailHostError(Exception):
    """A one-line reason why the mail host cannot start (exit status 2)."""


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


@dataclass
class MailHostConfig:
    maildir: Path
    accounts: Accounts
    pop3: tuple[str, int] | None = ("127.0.0.1", 1110)
    smtp: tuple[str, int] | None = ("127.0.0.1", 2525)
    domain: str = "isp.example"
    login_failure_delay: float = 2.0
    subscriber_nets: tuple[str, ...] = DEFAULT_SUBSCRIBER_NETS
    max_size: int = 10 * 1024 * 1024
    extra_domains: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_paths(
        cls, maildir: str | Path, accounts_file: str | Path, **kw: object
    ) -> MailHostConfig:
        """Load the accounts file and create the maildir; :class:`MailHostError` on failure."""
        try:
            accounts = Accounts.load(accounts_file)
        except AccountsFileError as e:
            raise MailHostError(str(e)) from None
        except (OSError, UnicodeDecodeError) as e:
            raise MailHostError(f"{accounts_file}: cannot read accounts file: {e}") from None
        root = Path(maildir)
        try:
            root.mkdir(parents=True, exist_ok=True)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionError(f"{root}: not writable")
        except OSError as e:
            reason = e.strerror or str(e)
            raise MailHostError(f"{root}: cannot create maildir: {reason}") from None
        if not root.is_dir():
            raise MailHostError(f"{root}: cannot create maildir: not a directory")
        return cls(maildir=root, accounts=accounts, **kw)  # type: ignore[arg-type]


class MailHost:
    """The POP3 and SMTP listeners of one mail host, on the running event loop."""

    def __init__(self, config: MailHostConfig) -> None:
        self.config = config
        self.store = MaildirStore(config.maildir)
        domains = (config.domain, *config.extra_domains)
        self.delivery = MaildirDelivery(
            config.maildir,
            domains,
            lambda user: user in config.accounts,
            hostname=f"mail.{config.domain}",
        )
        self._nets = [ipaddress.ip_network(n, strict=False) for n in config.subscriber_nets]
        self.connections: set[Connection] = set()
        self.servers: dict[str, asyncio.Server] = {}
        self.sessions = {"pop3": 0, "smtp": 0}

    def is_subscriber(self, peer: object) -> bool:
        """True when ``peer`` is in one of the subscriber networks (may relay)."""
        addr = peer_address(peer)
        return addr is not None and any(
            addr.version == n.version and addr in n for n in self._nets
        )

    def pop3_server(self, now: float) -> Pop3Server:
        self.sessions["pop3"] += 1
        return Pop3Server(
            self.config.accounts,
            self.store,
            hostname=f"pop.{self.config.domain}",
            now=now,
            login_failure_delay=self.config.login_failure_delay,
        )

    def smtp_server(self, now: float, peer: object) -> SmtpServer:
        self.sessions["smtp"] += 1
        return SmtpServer(
            self.delivery,
            hostname=f"mail.{self.config.domain}",
            local_domains=(self.config.domain, *self.config.extra_domains),
            subscriber_client=self.is_subscriber(peer),
            max_size=self.config.max_size,
            now=now,
        )

    async def start(self) -> dict[str, tuple[str, int]]:
        """Bind both listeners; returns {"pop3": (host, port), "smtp": ...} as bound."""
        try:
            if self.config.pop3 is not None:
                host, port = self.config.pop3
                self.servers["pop3"] = await serve(
                    self.pop3_server, host, port, connections=self.connections
                )
            if self.config.smtp is not None:
                host, port = self.config.smtp
                self.servers["smtp"] = await serve(
                    self.smtp_server, host, port, pass_peer=True, connections=self.connections
                )
        except OSError as e:
            await self.stop()
            name = "pop3" if "pop3" not in self.servers else "smtp"
            host, port = getattr(self.config, name)
            raise MailHostError(
                f"cannot listen on {host}:{port} ({name}): {e.strerror or e}"
            ) from None
        return self.addresses

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        out = {}
        for name, srv in self.servers.items():
            sockname = srv.sockets[0].getsockname()
            out[name] = (sockname[0], sockname[1])
        return out

    async def stop(self) -> None:
        """Stop listening and drop open sessions (no DELE is committed for them)."""
        for srv in self.servers.values():
            srv.close()
        await abort_all(self.connections)
        for srv in self.servers.values():
            await srv.wait_closed()
        self.servers.clear()


class MailHostThread:
    """A :class:`MailHost` on its own event loop in a background thread (for tests
    and embedding).  ``start()`` returns the bound addresses; ``stop()`` joins."""

    def __init__(self, config: MailHostConfig) -> None:
        self.host = MailHost(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.addresses: dict[str, tuple[str, int]] = {}

    def start(self, timeout: float = 10.0) -> dict[str, tuple[str, int]]:
        self._thread = threading.Thread(target=self._main, name="dialsim-mailhost", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("mail host did not start")
        if self._error is not None:
            raise self._error
        return self.addresses

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                self.addresses = await self.host.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.host.stop()

        asyncio.run(body())

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> MailHostThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------- command line


def _fmt(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve_forever(config: MailHostConfig, out: Callable[[str], None]) -> None:
    host = MailHost(config)
    addrs = await host.start()
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
        await host.stop()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dialsim")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommand(sub)
    args = parser.parse_args(["mailhost", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
