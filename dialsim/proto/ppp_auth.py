"""PPP authentication: PAP (RFC 1334 section 2) and CHAP with MD5 (RFC 1994).

Scope: one authentication exchange per link, in either role.

- PAP: the peer being authenticated sends Authenticate-Request (Peer-ID,
  Password) and retransmits it every restart interval until an
  Authenticate-Ack / -Nak arrives or ``max_attempts`` requests went unanswered;
  the authenticator answers every request (a retransmitted request after a
  decision gets the same answer) and gives up if none arrives in ``timeout``.
- CHAP: the authenticator sends a Challenge (16 random octets from the given
  ``random.Random`` and its name), retransmitting it until a Response comes;
  the Response value is MD5(Identifier || secret || challenge) (RFC 1994 4.1,
  algorithm 5); the authenticator answers Success or Failure and repeats that
  answer for a retransmitted Response.  Periodic re-challenge is not done.

Each machine is sans-IO: ``start(now)``, ``receive(packet, now)``,
``next_deadline()``, ``on_timer(now)``; it calls nothing back.  What it
produces waits in order for ``events()``: :class:`PacketToSend` (a packet
without the PPP protocol field) and, once, :class:`AuthSucceeded` or
:class:`AuthFailed` -- the link events :class:`dialsim.proto.ppp.PppConnection`
passes on.  ``result`` keeps the outcome as ``("ok", user)`` or
``("fail", reason)``.  ``role`` says which side a machine plays
("authenticator" or "peer").  Peer garbage is counted in ``malformed``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from dialsim.proto.events import Event, LinkEvent
from dialsim.proto.ppp_fsm import PacketToSend, decode_packet, encode_packet

PAP_AUTH_REQUEST = 1
PAP_AUTH_ACK = 2
PAP_AUTH_NAK = 3

CHAP_CHALLENGE = 1
CHAP_RESPONSE = 2
CHAP_SUCCESS = 3
CHAP_FAILURE = 4


def chap_md5_response(ident: int, secret: bytes, challenge: bytes) -> bytes:
    """RFC 1994 4.1 with MD5: MD5(Identifier || secret || Challenge-Value)."""
    return hashlib.md5(bytes([ident & 0xFF]) + secret + challenge).digest()


def _b(s: str | bytes | None) -> bytes:
    if s is None:
        return b""
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def _lookup_secret(authenticator, user: str) -> str | None:
    for name in ("secret", "chap_secret", "apop_secret"):
        f = getattr(authenticator, name, None)
        if f is not None:
            return f(user)
    return None


@dataclass(frozen=True, slots=True)
class AuthSucceeded(LinkEvent):
    """Authentication succeeded (``user``: the peer's name, or ours when we were authenticated)."""

    user: str
    now: float


@dataclass(frozen=True, slots=True)
class AuthFailed(LinkEvent):
    """Authentication failed, or the peer refused to authenticate."""

    reason: str
    now: float


class _Machine:
    role = ""

    def __init__(self, *, restart_timer: float, max_attempts: int) -> None:
        self.restart_timer = restart_timer
        self.max_attempts = max_attempts
        self.result: tuple[str, str] | None = None
        self._deadline: float | None = None
        self._queue: list[Event] = []
        self.malformed = 0
        self.sent = 0

    def next_deadline(self) -> float | None:
        return self._deadline

    def events(self) -> list[Event]:
        """Packets to send and the outcome, oldest first, since the last call."""
        out, self._queue = self._queue, []
        return out

    def _out(self, packet: bytes) -> None:
        self.sent += 1
        self._queue.append(PacketToSend(packet))

    def _finish(self, ok: bool, text: str, now: float) -> None:
        self.result = ("ok" if ok else "fail", text)
        self._deadline = None
        self._queue.append(AuthSucceeded(text, now) if ok else AuthFailed(text, now))


class PapPeer(_Machine):
    """PAP, the side being authenticated: sends Authenticate-Request with retries."""

    role = "peer"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        rng: random.Random,
        restart_timer: float = 3.0,
        max_attempts: int = 10,
    ) -> None:
        super().__init__(restart_timer=restart_timer, max_attempts=max_attempts)
        self.username = username
        self._password = password
        self._id = rng.randrange(256)
        self.attempts = 0

    def __repr__(self) -> str:
        return f"PapPeer(username={self.username!r}, password=<hidden>)"

    def start(self, now: float) -> None:
        self._request(now)

    def _request(self, now: float) -> None:
        self._id = (self._id + 1) & 0xFF
        u, p = _b(self.username), _b(self._password)
        self.attempts += 1
        self._out(encode_packet(PAP_AUTH_REQUEST, self._id, bytes([len(u)]) + u + bytes([len(p)]) + p))
        self._deadline = now + self.restart_timer

    def on_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.result is not None:
            return
        if self.attempts >= self.max_attempts:
            self._finish(False, "no answer to PAP Authenticate-Request", now)
        else:
            self._request(now)

    def receive(self, packet: bytes, now: float) -> None:
        p = decode_packet(packet)
        if p is None or p[0] not in (PAP_AUTH_ACK, PAP_AUTH_NAK):
            self.malformed += 1
            return
        code, ident, data = p
        if ident != self._id or self.result is not None:
            return  # an answer to an older request
        msg = data[1 : 1 + data[0]].decode("utf-8", "replace") if data else ""
        if code == PAP_AUTH_ACK:
            self._finish(True, self.username, now)
        else:
            self._finish(False, msg or "PAP Authenticate-Nak", now)


class PapAuthenticator(_Machine):
    """PAP, the authenticator: checks Peer-ID/Password with ``authenticator.check_password``."""

    role = "authenticator"

    def __init__(
        self,
        authenticator,
        *,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(restart_timer=timeout, max_attempts=1)
        self.authenticator = authenticator
        self.timeout = timeout
        self.user: str | None = None

    def start(self, now: float) -> None:
        self._deadline = now + self.timeout

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and self.result is None:
            self._finish(False, "no PAP Authenticate-Request from peer", now)

    def receive(self, packet: bytes, now: float) -> None:
        p = decode_packet(packet)
        if p is None or p[0] != PAP_AUTH_REQUEST:
            self.malformed += 1
            return
        _code, ident, data = p
        ulen = data[0] if data else 0
        plen = data[1 + ulen] if len(data) > 1 + ulen else -1
        if not data or plen < 0 or len(data) < 2 + ulen + plen:
            self.malformed += 1
            return
        user, pw = data[1 : 1 + ulen], data[2 + ulen : 2 + ulen + plen]
        decided = self.result
        if decided is None:
            name = user.decode("utf-8", "replace")
            ok = bool(self.authenticator is not None and self.authenticator.check_password(name, pw.decode("utf-8", "replace")))
            self.user = name
        else:
            ok = decided[0] == "ok"
        msg = b"Login ok" if ok else b"Login incorrect"
        self._out(encode_packet(PAP_AUTH_ACK if ok else PAP_AUTH_NAK, ident, bytes([len(msg)]) + msg))
        if decided is None:  # the answer goes out before the outcome is known upstairs
            self._finish(ok, name if ok else f"PAP: bad user name or password for {name!r}", now)


class ChapPeer(_Machine):
    """CHAP, the side being authenticated: answers each Challenge with MD5(id + secret + challenge)."""

    role = "peer"

    def __init__(
        self,
        username: str,
        secret: str,
        *,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(restart_timer=timeout, max_attempts=1)
        self.username = username
        self._secret = secret
        self.timeout = timeout
        self._id: int | None = None

    def __repr__(self) -> str:
        return f"ChapPeer(username={self.username!r}, secret=<hidden>)"

    def start(self, now: float) -> None:
        self._deadline = now + self.timeout

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and self.result is None:
            self._finish(False, "no CHAP Challenge from peer", now)

    def receive(self, packet: bytes, now: float) -> None:
        p = decode_packet(packet)
        if p is None:
            self.malformed += 1
            return
        code, ident, data = p
        if code == CHAP_CHALLENGE:
            if not data or len(data) < 1 + data[0] or data[0] == 0:
                self.malformed += 1
                return
            challenge = data[1 : 1 + data[0]]
            value = chap_md5_response(ident, _b(self._secret), challenge)
            self._id = ident
            name = _b(self.username)
            self._out(encode_packet(CHAP_RESPONSE, ident, bytes([len(value)]) + value + name))
        elif code in (CHAP_SUCCESS, CHAP_FAILURE):
            if ident != self._id or self.result is not None:
                return
            if code == CHAP_SUCCESS:
                self._finish(True, self.username, now)
            else:
                self._finish(False, data.decode("utf-8", "replace") or "CHAP Failure", now)
        else:
            self.malformed += 1


class ChapAuthenticator(_Machine):
    """CHAP, the authenticator: Challenge (retransmitted), check Response, Success/Failure."""

    role = "authenticator"

    def __init__(
        self,
        authenticator,
        *,
        rng: random.Random,
        name: str = "dialsim",
        restart_timer: float = 3.0,
        max_attempts: int = 10,
    ) -> None:
        super().__init__(restart_timer=restart_timer, max_attempts=max_attempts)
        self.authenticator = authenticator
        self.rng = rng
        self.name = name
        self._id = rng.randrange(256)
        self._challenge = b""
        self.attempts = 0
        self.user: str | None = None

    def start(self, now: float) -> None:
        self._id = (self._id + 1) & 0xFF
        self._challenge = self.rng.getrandbits(128).to_bytes(16, "big")
        self._send_challenge(now)

    def _send_challenge(self, now: float) -> None:
        self.attempts += 1
        self._out(encode_packet(CHAP_CHALLENGE, self._id, bytes([16]) + self._challenge + _b(self.name)))
        self._deadline = now + self.restart_timer

    def on_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.result is not None:
            return
        if self.attempts >= self.max_attempts:
            self._finish(False, "no CHAP Response from peer", now)
        else:
            self._send_challenge(now)

    def receive(self, packet: bytes, now: float) -> None:
        p = decode_packet(packet)
        if p is None or p[0] != CHAP_RESPONSE:
            self.malformed += 1
            return
        _code, ident, data = p
        if not data or len(data) < 1 + data[0]:
            self.malformed += 1
            return
        if ident != self._id:
            return  # a Response to an older Challenge
        decided = self.result
        if decided is None:
            value = data[1 : 1 + data[0]]
            name = data[1 + data[0] :].decode("utf-8", "replace")
            secret = _lookup_secret(self.authenticator, name) if self.authenticator is not None else None
            ok = secret is not None and value == chap_md5_response(ident, _b(secret), self._challenge)
            self.user = name
        else:
            ok = decided[0] == "ok"
        self._out(encode_packet(CHAP_SUCCESS if ok else CHAP_FAILURE, ident, b"Welcome" if ok else b"Access denied"))
        if decided is None:
            self._finish(ok, name if ok else f"CHAP: bad response for {name!r}", now)


__all__ = [
    "AuthFailed",
    "AuthSucceeded",
    "PapPeer",
    "PapAuthenticator",
    "ChapPeer",
    "ChapAuthenticator",
    "chap_md5_response",
]
