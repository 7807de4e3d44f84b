"""Hypothesis fuzzing of the RFC 1939 POP3 server's input: random bytes and
command-like lines in random chunks.  Invariants: nothing raises out of
``receive``/``on_timer``/``connection_lost``; the output is a sequence of
``+OK``/``-ERR`` status lines, each +OK possibly followed by a dot-terminated
multi-line body; the state stays in the table; DELE is committed only after
QUIT in the TRANSACTION state."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialsim.proto import pop3
from dialsim.proto.pop3 import CommandReceived, Pop3Server, SessionEnded

from .mailserve import Served, drain

MESSAGES = [
    b"Subject: a\r\n\r\nbody one\r\n",
    b"Subject: b\r\n\r\n.dot\r\n.\r\n..\r\nend\r\n",
    b"Subject: c\r\n\r\n" + b"x" * 300 + b"\r\n",
]
STATES = {pop3.AUTHORIZATION, pop3.TRANSACTION, pop3.UPDATE, pop3.CLOSED}


class Auth:
    def check_password(self, user, password):
        return (user, password) == ("alice", "pw")

    def apop_secret(self, user):
        return "pw" if user == "alice" else None


class Drop:
    def __init__(self, log):
        self.log = log

    def scan(self):
        return [(len(m), f"uid{i}") for i, m in enumerate(MESSAGES)]

    def read(self, i):
        return MESSAGES[i]

    def commit(self, deleted):
        self.log.append(("commit", frozenset(deleted)))

    def release(self):
        self.log.append(("release",))


class Store:
    def __init__(self):
        self.log = []
        self.locked = False

    def open(self, user):
        if user != "alice":
            return None
        return Drop(self.log)


VERBS = ["USER", "PASS", "APOP", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP",
         "UIDL", "QUIT", "CAPA", "user", "XYZZY", ""]  # fmt: skip
ARGS = ["", "alice", "pw", "bob", "1", "2", "3", "4", "0", "-1", "999999999999", "1 0", "2 1",
        "alice 0123456789abcdef0123456789abcdef", "a b c", "\x00\xff"]  # fmt: skip

command_line = st.builds(
    lambda v, a, end: (v + (" " + a if a else "")).encode("latin-1") + end,
    st.sampled_from(VERBS),
    st.sampled_from(ARGS),
    st.sampled_from([b"\r\n", b"\n", b"\r\n", b""]),
)
login = st.just(b"USER alice\r\nPASS pw\r\n")
piece = st.one_of(command_line, command_line, login, st.binary(max_size=40), st.just(b"A" * 300))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


def check_output(out: bytes) -> None:
    """Status lines and multi-line bodies only."""
    assert out == b"" or out.endswith(b"\r\n")
    lines = out.split(b"\r\n")[:-1]
    i = 0
    while i < len(lines):
        line = lines[i]
        assert line.startswith((b"+OK", b"-ERR")), (i, line)
        assert len(line) + 2 <= 512
        i += 1
        if line.startswith(b"+OK") and i < len(lines) and not lines[i].startswith((b"+OK", b"-ERR")):
            while lines[i] != b".":  # a multi-line body up to its terminator
                i += 1
                assert i < len(lines), "multi-line body without terminator"
            i += 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(piece, max_size=25),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    delay=st.sampled_from([0.0, 2.0]),
    end=st.sampled_from(["lost", "timer", "none"]),
)
def test_server_survives_any_input(pieces, cuts, delay, end):
    store = Store()
    srv = Served(Pop3Server(Auth(), apop_challenge="<1.2@x>", now=0.0, login_failure_delay=delay), store)
    out = bytearray(drain(srv))
    events = []
    now = 0.0
    for chunk in split(b"".join(pieces), cuts):
        srv.receive(chunk, now)
        now += 0.5
        while (d := srv.next_deadline()) is not None and d <= now:
            srv.on_timer(d)
        assert srv.state in STATES
        out += drain(srv)
        events += srv.events()
    if end == "lost":
        srv.connection_lost(now)
    elif end == "timer":
        srv.on_timer(now + 10_000)  # autologout
    out += drain(srv)
    events += srv.events()
    assert srv.state in STATES
    check_output(bytes(out))

    verbs = [e.verb for e in events if isinstance(e, CommandReceived)]
    commits = [entry for entry in store.log if entry[0] == "commit"]
    ended = [e.reason for e in events if isinstance(e, SessionEnded)]
    assert len(ended) <= 1
    if commits:
        assert "QUIT" in verbs and ended == ["quit"]
        assert len(commits) == 1 and srv.state == pop3.CLOSED
    if ended and ended[0] != "quit":
        assert not commits
    if end in ("lost", "timer") and not commits:
        # the maildrop (if one was opened) was released, nothing removed
        assert srv.state == pop3.CLOSED


def test_one_byte_at_a_time_matches_all_at_once():
    script = b"CAPA\r\nUSER alice\r\nPASS pw\r\nLIST\r\nRETR 2\r\nTOP 2 1\r\nDELE 1\r\nUIDL\r\nQUIT\r\n"
    outs = []
    for chunks in ([script], [script[i : i + 1] for i in range(len(script))]):
        store = Store()
        srv = Served(Pop3Server(Auth(), now=0.0), store)
        out = drain(srv)
        for c in chunks:
            srv.receive(c, 1.0)
            out += drain(srv)
        outs.append(out)
        assert store.log == [("commit", frozenset({0}))]
    assert outs[0] == outs[1]
    check_output(outs[0])
    # RETR 2: every line starting with "." stuffed, then the terminator
    assert b"\r\n\r\n..dot\r\n..\r\n...\r\nend\r\n.\r\n" in outs[0]
    # TOP 2 1: headers, blank line, one body line
    assert b"+OK top of message follows\r\nSubject: b\r\n\r\n..dot\r\n.\r\n" in outs[0]


def test_output_checker_rejects_malformed_replies():
    import pytest

    check_output(b"+OK\r\n+OK list\r\n1 20\r\n.\r\n-ERR no\r\n")
    for bad in (b"hello\r\n", b"+OK\r\n+OK list\r\n1 20\r\n", b"+OK no crlf", b"+OK " + b"x" * 600 + b"\r\n"):
        with pytest.raises(AssertionError):
            check_output(bad)
