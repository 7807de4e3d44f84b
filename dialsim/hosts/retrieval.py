"""The subscriber's mail-retrieval strategy: how a 1990s POP3 client (RFC 1939) drives a session.

Scope: sans-IO.  :class:`RetrievalSession` is fed the events of a
:class:`dialsim.proto.pop3.Pop3Client` and issues the client's commands:
greeting -> USER/PASS (or APOP, RFC 1939 section 7, when asked and the
greeting carries a challenge) -> STAT -> UIDL (when the policy uses UIDs) ->
LIST (when the policy needs sizes) -> RETR of every message not seen before
(and DELE after each successful RETR in "delete" mode) -> QUIT.  With
``pipelining`` (RFC 2449) all RETRs go out at once and each DELE follows its
RETR's reply; authentication stays sequential.

The strategies real clients offered (:class:`RetrievalPolicy`):

- batch commit (fetchmail's ``--fetchlimit``, with a new poll at once): QUIT
  after ``batch`` messages so the DELEs so far take effect, then the caller
  opens a new session (``more`` says there is mail left);
- a size limit: messages over ``size_limit`` octets are left on the server
  (fetchmail's ``--limit``), or only their header is fetched with TOP
  (Eudora's "Skip messages over N K", Netscape's "partial message");
- smallest first (by LIST's sizes);
- leave mail on the server and delete it ``leave_for`` seconds after it was
  first retrieved (Eudora's and Netscape's "leave on server, delete after N
  days");

What survives a dropped line is the point of the model: DELE only takes effect
when the server reaches its UPDATE state after QUIT, so a drop mid-session
leaves every message on the server.  A client with ``use_uidl`` remembers the
UIDs it already has (``seen_uidls``, kept by the caller across redials) and on
the next call deletes those without fetching them again; the naive client
(``use_uidl=False``) fetches them again: duplicates.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dialsim.proto.pop3 import ConnectionLost, GreetingReceived, Pop3Client, ResponseReceived

__all__ = ["RetrievalPolicy", "RetrievalSession"]


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """``mode``: "delete" (DELE after each RETR) or "keep" (leave mail on the
    server).  ``batch``: QUIT after this many RETRs (0: no limit).
    ``size_limit`` (octets, None: none) and ``over_limit`` ("skip" or
    "headers", fetched with TOP and ``header_lines`` lines of the body).
    ``order``: "server" (message numbers) or "smallest_first".  ``leave_for``
    (seconds, keep mode): DELE a message once it was first retrieved this long
    ago."""

    mode: str
    use_uidl: bool = True
    batch: int = 0
    size_limit: int | None = None
    over_limit: str = "skip"
    header_lines: int = 0
    order: str = "server"
    leave_for: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("delete", "keep"):
            raise ValueError(f"retrieval mode must be 'delete' or 'keep', not {self.mode!r}")
        if self.over_limit not in ("skip", "headers") or self.order not in ("server", "smallest_first"):
            raise ValueError("over_limit must be skip or headers, order server or smallest_first")
        if self.batch < 0 or self.header_lines < 0 or (self.size_limit or 0) < 0:
            raise ValueError("batch, header_lines and size_limit must be >= 0")
        if self.batch and self.mode == "keep" and not self.use_uidl:
            raise ValueError("batch commit in keep mode needs use_uidl (or it fetches the same batch again)")
        if self.leave_for is not None and (self.mode != "keep" or not self.use_uidl):
            raise ValueError("leave_for needs mode keep with use_uidl")

    @property
    def needs_sizes(self) -> bool:
        return self.size_limit is not None or self.order == "smallest_first"


class RetrievalSession:
    """One dial-up mail check, from the server's greeting to QUIT (or the carrier's loss).

    Attributes the caller reads: ``retrieved`` (list of (uidl or None,
    message number, message bytes, t_done)) and ``retrieved_octets`` (each
    RETR answer's octets as on the wire), ``headers`` (the same for TOP),
    ``done``, ``quit_ok``, ``error`` (None, "greeting", "auth", "in_use",
    "stat", "connection_lost" or "quit"), ``message_count`` and
    ``maildrop_octets`` (from STAT), ``skipped`` (message numbers not fetched
    because their UID was seen), ``over_limit`` (message numbers left for
    their size), ``deleted`` (message numbers the server acknowledged DELE
    for; they are gone only if ``quit_ok``), ``more`` (the batch limit
    stopped the session with mail left to fetch), ``partial_octets`` (what
    had arrived of an answer the lost connection cut).

    ``retrieved_at`` (uidl -> when first retrieved) and ``headers_seen`` (uids
    whose header was fetched) belong to the caller and outlive the session,
    like ``seen_uidls``.
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
        retrieved_at: dict[str, float] | None = None,
        headers_seen: set[str] | None = None,
        deliver: Callable[[str | None, bytes, float, int], None] | None = None,
    ) -> None:
        # ``deliver(uidl, body, t_done, octets_down)`` takes each retrieved message
        # as it arrives; ``retrieved`` then keeps None for the body, so a session
        # of 10,000 messages does not hold them all until it ends.
        self._deliver = deliver
        self.client = client
        self.user = user
        self._password = password
        self.policy = policy
        self.seen_uidls = seen_uidls
        self.use_apop = use_apop
        self.pipelining = pipelining
        self.server_pipelining = False  # learnt from CAPA when pipelining is wanted

        self.retrieved_at = retrieved_at if retrieved_at is not None else {}
        self.headers_seen = headers_seen if headers_seen is not None else set()

        self.retrieved: list[tuple[str | None, int, bytes | None, float]] = []
        self.retrieved_octets: list[int] = []
        self.headers: list[tuple[str | None, int, bytes, float]] = []
        self.skipped: list[int] = []
        self.over_limit: list[int] = []
        self.deleted: list[int] = []
        self.more = False
        self.partial_octets = 0
        self.done = False
        self.quit_ok = False
        self.error: str | None = None
        self.message_count: int | None = None
        self.maildrop_octets: int | None = None

        self._phase = "greeting"
        self._plan: deque[tuple[str, int, str | None]] = deque()  # (action, n, uidl)
        self._uidl_of: dict[int, str] = {}
        self._size_of: dict[int, int] = {}
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
            if ev.unanswered and ev.unanswered[0] in ("RETR", "TOP"):
                self.partial_octets = ev.partial_octets
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
            self._sizes_or_fetch(now)
        elif self._phase == "list" and verb == "LIST":
            if ev.ok and ev.body is not None:
                self._size_of = {n: int(v) for n, v in _parse_uidl(ev.body).items() if v.isdigit()}
            self._start_fetch(now)
        elif self._phase == "fetch" and verb in ("RETR", "DELE", "TOP"):
            self._on_fetch(ev, now)

    def _on_fetch(self, ev: ResponseReceived, now: float) -> None:
        verb = ev.verb
        self._awaiting -= 1
        first = ev.arg_shown.split(" ", 1)[0]
        n = int(first) if first.isdigit() else 0
        uid = self._uidl_of.get(n)
        if verb == "RETR" and ev.ok and ev.body is not None:
            kept = ev.body
            if self._deliver is not None:
                self._deliver(uid, ev.body, ev.t_done, ev.bytes_down)
                kept = None
            self.retrieved.append((uid, n, kept, ev.t_done))
            self.retrieved_octets.append(ev.bytes_down)
            if uid is not None and self.policy.use_uidl:
                self.seen_uidls.add(uid)
                self.retrieved_at.setdefault(uid, ev.t_done)
            if self.policy.mode == "delete":
                self.client.dele(n, now=now)
                self._awaiting += 1
        elif verb == "TOP" and ev.ok and ev.body is not None:
            self.headers.append((uid, n, ev.body, ev.t_done))
            if uid is not None:
                self.headers_seen.add(uid)
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
            self._sizes_or_fetch(now)

    def _sizes_or_fetch(self, now: float) -> None:
        if self.policy.needs_sizes:
            self._phase = "list"
            self.client.list(now=now)
        else:
            self._start_fetch(now)

    def _start_fetch(self, now: float) -> None:
        self._make_plan(now)
        self._phase = "fetch"
        self._advance(now)

    # -- the plan ------------------------------------------------------------

    def _make_plan(self, now: float) -> None:
        assert self.message_count is not None
        pol = self.policy
        plan: list[tuple[str, int, str | None]] = []
        for n in range(1, self.message_count + 1):
            uid = self._uidl_of.get(n)
            size = self._size_of.get(n, 0)
            if pol.use_uidl and uid is not None and uid in self.seen_uidls:
                self.skipped.append(n)
                if pol.mode == "delete":
                    # Fetched in an earlier call whose QUIT never got through.
                    plan.append(("DELE", n, uid))
                elif pol.leave_for is not None and now - self.retrieved_at.get(uid, now) >= pol.leave_for:
                    plan.append(("DELE", n, uid))  # kept long enough
            elif pol.size_limit is not None and size > pol.size_limit:
                self.over_limit.append(n)
                if pol.over_limit == "headers" and not (uid is not None and uid in self.headers_seen):
                    plan.append(("TOP", n, uid))
            else:
                plan.append(("RETR", n, uid))
        if pol.order == "smallest_first":
            plan.sort(key=lambda a: (a[0] == "RETR", self._size_of.get(a[1], 0) if a[0] == "RETR" else 0))
        if pol.batch:
            retrs = [a for a in plan if a[0] == "RETR"]
            if len(retrs) > pol.batch:
                self.more = True
                dropped = set(retrs[pol.batch:])
                plan = [a for a in plan if a not in dropped]
        self._plan.extend(plan)

    def _advance(self, now: float) -> None:
        if self._awaiting > 0 and not self.pipelining:
            return
        while self._plan and (self.pipelining or self._awaiting == 0):
            action, n, _uid = self._plan.popleft()
            if action == "RETR":
                self.client.retr(n, now=now)
            elif action == "TOP":
                self.client.top(n, self.policy.header_lines, now=now)
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
