"""The ISP's mail host: accounts, maildrops, delivery and the POP3 (RFC 1939) and
SMTP (RFC 5321) servers built over them.

Scope: composition only, no I/O loop.  A driver runs it:

- ``dialsim mailhost`` serves :meth:`MailHost.listeners` on real sockets with
  :class:`dialsim.drivers.sockets.Service`, carrying out the servers' storage
  effects with :meth:`MailHost.carry_out` on a thread pool (durable Maildir:
  tmp/, fsync, rename into new/, fsync new/), so a slow disk never stalls the
  event loop.  Facing whatever connects, it holds every PASS/APOP answer to
  one time (``auth_delay``), throttles guessing per user and per client
  address (:class:`~dialsim.mail.accounts.LoginThrottle`), logs failed logins
  (never the password) to the ``dialsim.mailhost`` logger, caps connections
  in all and per client address, offers STLS and STARTTLS with the given or
  a self-signed certificate (:mod:`dialsim.hosts.tlscert`), and takes mail
  for postmaster (RFC 5321 4.5.1) and for this host's address literals;
- the simulation answers the same effects at once, in the same simulated
  instant, from a :class:`MailStore` over scratch mail that is thrown away
  after the replication: in memory (:mod:`dialsim.mail.memory`) for a
  simulated run, Maildir folders without fsync for the real-time modes.

:class:`MailStore` is the one place a storage effect turns into a store call;
:func:`answer` hands the result (or the exception) back to the server.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialsim.mail.accounts import Accounts, AccountsFileError, LoginThrottle
from dialsim.mail.delivery import MaildirDelivery
from dialsim.mail.maildrop import MaildirStore
from dialsim.proto.events import Effect, Event
from dialsim.proto.pop3 import (
    CommitMaildrop,
    LoginFailed,
    MaildropListing,
    OpenMaildrop,
    Pop3Server,
    ReadMessage,
    ReleaseMaildrop,
)

if TYPE_CHECKING:
    from dialsim.hosts import tlscert
    from dialsim.proto.smtp import SmtpServer

__all__ = [
    "DEFAULT_SUBSCRIBER_NETS",
    "MailHost",
    "MailHostConfig",
    "MailHostError",
    "MailStore",
    "answer",
    "peer_address",
]

DEFAULT_SUBSCRIBER_NETS = ("127.0.0.0/8", "::1/128")

# name, (host, port), factory(now, peer, local, busy)
Listener = tuple[str, tuple[str, int], Callable[..., Any]]

log = logging.getLogger("dialsim.mailhost")


class MailHostError(Exception):
    """A one-line reason why the mail host cannot start (exit status 2)."""


def peer_address(peer: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of ``peer`` (a peername tuple or a host string), an
    IPv4-mapped IPv6 address as its IPv4 address; None if it is not one."""
    host = peer[0] if isinstance(peer, tuple) else peer
    try:
        addr = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


class MailStore:
    """Carries out the POP3 and SMTP servers' storage effects.

    ``maildrops`` is where POP3 sessions lock, list, read and commit
    (:class:`~dialsim.mail.maildrop.MaildirStore`, or anything with its
    ``open(user)`` returning a maildrop with ``scan``/``read``/``commit``/
    ``release``); ``delivery`` is where SMTP's accepted messages go
    (:class:`~dialsim.mail.delivery.MaildirDelivery`).
    """

    def __init__(self, maildrops: Any = None, delivery: Any = None) -> None:
        self.maildrops = maildrops
        self.delivery = delivery

    def __repr__(self) -> str:
        return f"<MailStore maildrops={self.maildrops!r} delivery={self.delivery!r}>"

    def carry_out(self, effect: Effect) -> object:
        """Do what ``effect`` asks and return the server's answer; raises what the store raises."""
        match effect:
            case OpenMaildrop(user=user):
                return self._open(user)
            case ReadMessage(handle=drop, index=index):
                return drop.read(index)
            case CommitMaildrop(handle=drop, deleted=deleted):
                drop.commit(set(deleted))
                return None
            case ReleaseMaildrop(handle=drop):
                drop.release()
                return None
        return self._deliver(effect)

    def _deliver(self, effect: Effect) -> None:
        """SMTP's effect (an SMTP server made it, so SMTP is loaded by now)."""
        from dialsim.proto.smtp import DeliverMessage

        if not isinstance(effect, DeliverMessage):
            raise TypeError(f"not a storage effect: {effect!r}")
        self.delivery.deliver(effect.sender, list(effect.recipients), effect.data)

    def _open(self, user: str) -> MaildropListing | None:
        drop = self.maildrops.open(user)
        if drop is None:
            return None
        try:
            messages = tuple(drop.scan())
        except BaseException:
            drop.release()
            raise
        return MaildropListing(drop, messages)


def answer(machine: Any, effect: Effect, carry_out: Callable[[Effect], object], now: float) -> None:
    """Carry out ``effect`` now and hand the result (or the exception) to ``machine.complete``."""
    try:
        result = carry_out(effect)
    except Exception as exc:  # the store failed: the server answers per its RFC
        result = exc
    machine.complete(effect, result, now)


@dataclass
class MailHostConfig:
    """What a mail host serves and how.

    ``auth_delay``: seconds every POP3 PASS/APOP answer is held (success and
    failure alike); ``login_delay``: RFC 2449 LOGIN-DELAY, the least seconds
    between two logins of one user (advertised in CAPA); ``max_connections``
    and ``max_per_address``: concurrent connections in all and from one client
    address (beyond them: ``421`` / ``-ERR [SYS/TEMP]``); ``tls``: offer STLS
    and STARTTLS, with ``tls_cert``/``tls_key`` or a self-signed certificate
    kept in the maildir; ``postmaster``: the user who reads postmaster's mail
    (default: the Maildir ``postmaster``).
    """

    maildir: Path
    accounts: Accounts
    pop3: tuple[str, int] | None = ("127.0.0.1", 1110)
    smtp: tuple[str, int] | None = ("127.0.0.1", 2525)
    domain: str = "isp.example"
    auth_delay: float = 2.0
    login_delay: float = 0.0
    subscriber_nets: tuple[str, ...] = DEFAULT_SUBSCRIBER_NETS
    max_size: int = 10 * 1024 * 1024
    extra_domains: tuple[str, ...] = field(default_factory=tuple)
    max_connections: int = 200
    max_per_address: int = 20
    tls: bool = True
    tls_cert: Path | None = None
    tls_key: Path | None = None
    postmaster: str | None = None

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
    """One mail host: its accounts, its durable Maildir store and its servers.

    SMTP clients from ``subscriber_nets`` may relay to foreign domains; others
    may only send to the local domains (RFC 5321 section 7.1, no open relay).
    """

    def __init__(self, config: MailHostConfig) -> None:
        self.config = config
        self.maildrops = MaildirStore(config.maildir)
        self.domains = (config.domain, *config.extra_domains)
        self.delivery = MaildirDelivery(
            config.maildir,
            self.domains,
            lambda user: user in config.accounts,
            hostname=f"mail.{config.domain}",
            postmaster=config.postmaster,
        )
        self.store = MailStore(self.maildrops, self.delivery)
        self._nets = [ipaddress.ip_network(n, strict=False) for n in config.subscriber_nets]
        self.sessions = {"pop3": 0, "smtp": 0}
        self.throttle = LoginThrottle()
        self.last_logins: dict[str, float] = {}  # RFC 2449 LOGIN-DELAY, across sessions
        self.connection_limits = (config.max_connections, config.max_per_address)
        self.certificate: tlscert.Certificate | None = None
        self.tls_context: ssl.SSLContext | None = None
        if config.tls:
            self.certificate, self.tls_context = self._tls()

    def _tls(self) -> tuple[tlscert.Certificate, ssl.SSLContext]:
        """The certificate (given, or self-signed next to the Maildir) and its server context."""
        from dialsim.hosts import tlscert  # ssl and openssl: only a mail host with TLS needs them

        cfg = self.config
        if cfg.tls_cert is not None:
            cert = tlscert.Certificate(cfg.tls_cert, cfg.tls_key or cfg.tls_cert, "given")
        else:
            cert = tlscert.self_signed(cfg.maildir, cfg.domain)
        return cert, tlscert.server_context(cert)

    def __repr__(self) -> str:
        return f"<MailHost {self.config.domain} maildir={self.config.maildir}>"

    def is_subscriber(self, peer: object) -> bool:
        """True when ``peer`` is in one of the subscriber networks (may relay)."""
        addr = peer_address(peer)
        return addr is not None and any(
            addr.version == n.version and addr in n for n in self._nets
        )

    def carry_out(self, effect: Effect) -> object:
        """A server's storage effect, done on the durable store (blocking: run it off the loop)."""
        return self.store.carry_out(effect)

    def pop3_server(
        self, now: float, peer: object = None, local: object = None, busy: str | None = None
    ) -> Pop3Server:
        self.sessions["pop3"] += 1
        addr = peer_address(peer)
        return Pop3Server(
            self.config.accounts,
            hostname=f"pop.{self.config.domain}",
            now=now,
            auth_delay=self.config.auth_delay,
            login_failure_delay=self.config.auth_delay,
            login_delay=self.config.login_delay,
            last_logins=self.last_logins,
            throttle=self.throttle,
            peer=str(addr) if addr is not None else "",
            tls_context=self.tls_context,
            busy=busy,
        )

    def smtp_server(
        self, now: float, peer: object = None, local: object = None, busy: str | None = None
    ) -> SmtpServer:
        from dialsim.proto.smtp import SmtpServer

        self.sessions["smtp"] += 1
        here = peer_address(local)
        return SmtpServer(
            self.delivery,
            hostname=f"mail.{self.config.domain}",
            local_domains=self.domains,
            subscriber_client=self.is_subscriber(peer),
            max_size=self.config.max_size,
            local_addresses=(str(here),) if here is not None else (),
            tls_context=self.tls_context,
            busy=busy,
            now=now,
        )

    def on_event(self, machine: Any, event: Event, now: float) -> None:
        """Session events worth a log line: failed logins (never the password)."""
        if isinstance(event, LoginFailed):
            log.warning("POP3 login failed for user %r from %s", event.user, event.peer or "?")

    def listeners(self) -> list[Listener]:
        """(service name, (host, port), factory(now, peer)) of each configured service."""
        out: list[Listener] = []
        if self.config.pop3 is not None:
            out.append(("pop3", self.config.pop3, self.pop3_server))
        if self.config.smtp is not None:
            out.append(("smtp", self.config.smtp, self.smtp_server))
        return out
