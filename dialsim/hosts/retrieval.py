"""The subscriber's mail-retrieval strategy: how a 1990s POP3 client (RFC 1939) drives a session.

Scope: sans-IO.  :class:`RetrievalSession` is fed the events of a
:class:`dialsim.proto.pop3.Pop3Client` and issues the client's commands:
greeting -> USER/PASS (or APOP, RFC 1939 section 7, when asked and the
greeting carries a challenge) -> STAT -> UIDL (when the policy uses UIDs) ->
RETR of every message not seen before (and DELE after each successful RETR in
"delete" mode) -> QUIT.  With ``pipelining`` (RFC 2449) all RETRs go out at
once and each DELE follows its RETR's reply; authentication stays sequential.

What survives a dropped line is the point of the model: DELE only takes effect
when the server reaches its UPDATE state after QUIT, so a drop mid-session
leaves every message on the server.  A client with ``use_uidl`` remembers the
UIDs it already has (``seen_uidls``, kept by the caller across redials) and on
the next call deletes those without fetching them again; the naive client
(``use_uidl=False``) fetches them again: duplicates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialsim.proto.pop3 import ConnectionLost, GreetingReceived, Pop3Client, ResponseReceived

__all__ = ["RetrievalPolicy", "RetrievalSession"]


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """``mode``: "delete" (DELE after each RETR) or "keep" (leave mail on the server)."""

    mode: str
    use_uidl: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("delete", "keep"):
            raise ValueError(f"retrieval mode must be 'delete' or 'keep', not {self.mode!r}")


class RetrievalSession:
    """One dial-up mail check, from the server's greeting to QUIT (or the carrier's loss).

    Attributes the caller reads: ``retrieved`` (list of (uidl or None,
    message number, message bytes, t_done)), ``done``, ``quit_ok``,
    ``error`` (None, "greeting", "auth", "in_use", "stat",
    "connection_lost" or "quit"), ``message_count`` and ``maildrop_octets`` (from STAT),
    ``skipped`` (message numbers not fetched because their UID was seen),
    ``deleted`` (message numbers the server acknowledged DELE for; they are
    gone only if ``quit_ok``).
    """

    def __init__(
        self,
        client: Pop3Client,
        *,
        user: str,
        password: str,
        policy: RetrievalPolicy,
        seen_uidls: set[str],
        use_apop: bool = False,
        pipelining: bool = False,
    ) -> None:
        self.client = client
        self.user = user
        self._password = password
        self.policy = policy
        self.seen_uidls = seen_uidls
        self.use_apop = use_apop
        self.pipelining = pipelining
        self.server_pipelining = False  # learnt from CAPA when pipelining is wanted

        self.retrieved: list[tuple[str | None, int, bytes, float]] = []
        self.skipped: list[int] = []
        self.deleted: list[int] = []
        self.done = False
        self.quit_ok = False
        self.error: str | None = None
        self.message_count: int | None = None
        self.maildrop_octets: int | None = None

        self._phase = "greeting"
        self._plan: deque[tuple[str, int, str | None]] = deque()  # (action, n, uidl)
        self._uidl_of: dict[int, str] = {}
        self._awaiting = 0  # RETR/DELE replies expected before the next step

    def __repr__(self) -> str:
        return (
            f"<RetrievalSession user={self.user!r} phase={self._phase} "
            f"retrieved={len(self.retrieved)} done={self.done}>"
        )

    # -- event intake --------------------------------------------------------

    def on_event(self, ev: object, now: float) -> None:
        if self.done:
            return
        if isinstance(ev, ConnectionLost):
            self.done = True
            if not self.quit_ok and self.error is None:
                self.error = "connection_lost"
            self._phase = "done"
        elif isinstance(ev, GreetingReceived):
            self._on_greeting(ev, now)
        elif isinstance(ev, ResponseReceived):
            self._on_response(ev, now)

    def _on_greeting(self, ev: GreetingReceived, now: float) -> None:
        if not ev.ok:
            self.error = "greeting"
            self._quit(now)
            return
        if self.pipelining and self._phase != "capa":
            # RFC 2449: pipeline only if the server says it may; ask first.
            self._greeting = ev
            self._phase = "capa"
            self.pipelining = False
            self.client.capa(now=now)
            return
        self._login(ev, now)

    def _login(self, ev: GreetingReceived, now: float) -> None:
        if self.use_apop and ev.apop_challenge:
            self._phase = "auth"
            self.client.apop(self.user, self._password, ev.apop_challenge, now=now)
        else:
            self._phase = "user"
            self.client.user(self.user, now=now)

    def _on_response(self, ev: ResponseReceived, now: float) -> None:
        verb = ev.verb
        if verb == "QUIT":
            self.quit_ok = ev.ok
            if not ev.ok and self.error is None:
                self.error = "quit"
            self.done = True
            self._phase = "done"
        elif self._phase == "capa" and verb == "CAPA":
            caps = (ev.body or b"").decode("latin-1").upper().split("\r\n")
            self.server_pipelining = ev.ok and any(c.split(" ")[0] == "PIPELINING" for c in caps)
            self.pipelining = self.server_pipelining
            self._login(self._greeting, now)
        elif self._phase == "user" and verb == "USER":
            if not ev.ok:
                self.error = "auth"
                self._quit(now)
                return
            self._phase = "auth"
            self.client.pass_(self._password, now=now)
        elif self._phase == "auth" and verb in ("PASS", "APOP"):
            if not ev.ok:
                if "[IN-USE]" in ev.text:
                    self.error = "in_use"
                elif "[LOGIN-DELAY]" in ev.text:
                    self.error = "login_delay"
                else:
                    self.error = "auth"
                self._quit(now)
                return
            self._phase = "stat"
            self.client.stat(now=now)
        elif self._phase == "stat" and verb == "STAT":
            self._on_stat(ev, now)
        elif self._phase == "uidl" and verb == "UIDL":
            if ev.ok and ev.body is not None:
                self._uidl_of = _parse_uidl(ev.body)
            self._make_plan()
            self._phase = "fetch"
            self._advance(now)
        elif self._phase == "fetch" and verb in ("RETR", "DELE"):
            self._awaiting -= 1
            n = int(ev.arg_shown) if ev.arg_shown.isdigit() else 0
            if verb == "RETR" and ev.ok and ev.body is not None:
                uid = self._uidl_of.get(n)
                self.retrieved.append((uid, n, ev.body, ev.t_done))
                if uid is not None and self.policy.use_uidl:
                    self.seen_uidls.add(uid)
                if self.policy.mode == "delete":
                    self.client.dele(n, now=now)
                    self._awaiting += 1
            elif verb == "DELE" and ev.ok:
                self.deleted.append(n)
            self._advance(now)

    def _on_stat(self, ev: ResponseReceived, now: float) -> None:
        parts = ev.text.split()
        if not ev.ok or len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            self.error = "stat"
            self._quit(now)
            return
        self.message_count = int(parts[0])
        self.maildrop_octets = int(parts[1])
        if self.message_count == 0:
            self._quit(now)
        elif self.policy.use_uidl:
            self._phase = "uidl"
            self.client.uidl(now=now)
        else:
            self._make_plan()
            self._phase = "fetch"
            self._advance(now)

    # -- the plan ------------------------------------------------------------

    def _make_plan(self) -> None:
        assert self.message_count is not None
        for n in range(1, self.message_count + 1):
            uid = self._uidl_of.get(n)
            if self.policy.use_uidl and uid is not None and uid in self.seen_uidls:
                self.skipped.append(n)
                if self.policy.mode == "delete":
                    # Fetched in an earlier call whose QUIT never got through.
                    self._plan.append(("DELE", n, uid))
            else:
                self._plan.append(("RETR", n, uid))

    def _advance(self, now: float) -> None:
        if self._awaiting > 0 and not self.pipelining:
            return
        while self._plan and (self.pipelining or self._awaiting == 0):
            action, n, _uid = self._plan.popleft()
            if action == "RETR":
                self.client.retr(n, now=now)
            else:
                self.client.dele(n, now=now)
            self._awaiting += 1
        if not self._plan and self._awaiting == 0:
            self._quit(now)

    def _quit(self, now: float) -> None:
        if self._phase != "quit":
            self._phase = "quit"
            self.client.quit(now=now)


def _parse_uidl(body: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in body.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out
