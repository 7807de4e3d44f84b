"""POP3 server and client (RFC 1939, RFC 2449) against the RFCs' examples."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import Effect
from dialsim.proto.pop3 import (
    AUTHORIZATION,
    CLOSED,
    TRANSACTION,
    UPDATE,
    CloseRequested,
    CommandReceived,
    CommitMaildrop,
    ConnectionLost,
    GreetingReceived,
    LoginFailed,
    MaildropListing,
    OpenMaildrop,
    Pop3Client,
    Pop3Server,
    ReadMessage,
    ReleaseMaildrop,
    ResponseReceived,
    SessionEnded,
    apop_digest,
    dot_stuff,
    dot_unstuff,
)

from .mailserve import Served, drain

CHALLENGE = "<1896.697170952@dbc.mtview.ca.us>"


class FakeAuth:
    def __init__(self, users=None):
        self.users = users or {"mrose": "tanstaaf"}

    def check_password(self, user, password):
        return self.users.get(user) == password

    def apop_secret(self, user):
        return self.users.get(user)


class FakeDrop:
    def __init__(self, messages):
        self.messages = list(messages)
        self.committed: set[int] | None = None
        self.released = False

    def scan(self):
        return [(len(m), f"uid-{i:04d}") for i, m in enumerate(self.messages)]

    def read(self, index):
        return self.messages[index]

    def commit(self, deleted):
        self.committed = set(deleted)
        self.messages = [m for i, m in enumerate(self.messages) if i not in deleted]
        self.released = True

    def release(self):
        self.released = True


class FakeStore:
    def __init__(self, messages):
        self.drop = FakeDrop(messages)
        self.locked = False

    def open(self, user):
        if self.locked:
            return None
        self.locked = True
        self.drop.released = False
        return self.drop


def sized(n: int, tag: bytes = b"x") -> bytes:
    """A message of exactly n octets with CRLF line ends."""
    head = b"Subject: " + tag + b"\r\n\r\n"
    body_len = n - len(head) - 2
    return head + b"y" * body_len + b"\r\n"


def make_server(messages=None, **kw):
    msgs = messages if messages is not None else [sized(120, b"1"), sized(200, b"2")]
    store = FakeStore(msgs)
    kw.setdefault("now", 0.0)
    srv = Served(Pop3Server(FakeAuth(), **kw), store)
    return srv, store


def talk(srv, line: bytes, now: float = 1.0) -> bytes:
    srv.receive(line, now)
    return drain(srv)


def login(srv):
    drain(srv)
    assert talk(srv, b"USER mrose\r\n").startswith(b"+OK")
    assert talk(srv, b"PASS tanstaaf\r\n").startswith(b"+OK")
    assert srv.state == TRANSACTION


# ---------------------------------------------------------------------------
# RFC 1939 examples


def test_apop_digest_rfc1939_vector():
    assert apop_digest(CHALLENGE, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"


def test_rfc1939_section10_example_session():
    srv, store = make_server(hostname="dewey", apop_challenge=CHALLENGE)
    assert drain(srv) == b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n"
    assert (
        talk(srv, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n")
        == b"+OK mrose's maildrop has 2 messages (320 octets)\r\n"
    )
    assert talk(srv, b"STAT\r\n") == b"+OK 2 320\r\n"
    assert talk(srv, b"LIST\r\n") == b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n"
    assert talk(srv, b"RETR 1\r\n") == b"+OK 120 octets\r\n" + store.drop.messages[0] + b".\r\n"
    assert talk(srv, b"DELE 1\r\n") == b"+OK message 1 deleted\r\n"
    assert talk(srv, b"RETR 2\r\n") == b"+OK 200 octets\r\n" + store.drop.messages[1] + b".\r\n"
    assert talk(srv, b"DELE 2\r\n") == b"+OK message 2 deleted\r\n"
    assert talk(srv, b"QUIT\r\n") == b"+OK dewey POP3 server signing off (maildrop empty)\r\n"
    assert store.drop.committed == {0, 1}
    evs = srv.events()
    assert SessionEnded("quit", 1.0) in evs and CloseRequested(1.0) in evs
    assert srv.state == CLOSED


def test_rfc1939_command_examples():
    srv, store = make_server(hostname="dewey")
    login(srv)
    assert talk(srv, b"LIST 2\r\n") == b"+OK 2 200\r\n"
    assert talk(srv, b"LIST 3\r\n") == b"-ERR no such message, only 2 messages in maildrop\r\n"
    assert talk(srv, b"DELE 1\r\n") == b"+OK message 1 deleted\r\n"
    assert talk(srv, b"DELE 1\r\n") == b"-ERR message 1 already deleted\r\n"
    assert talk(srv, b"STAT\r\n") == b"+OK 1 200\r\n"
    assert talk(srv, b"LIST\r\n") == b"+OK 1 messages (200 octets)\r\n2 200\r\n.\r\n"
    assert talk(srv, b"RSET\r\n") == b"+OK maildrop has 2 messages (320 octets)\r\n"
    assert talk(srv, b"NOOP\r\n") == b"+OK\r\n"
    assert talk(srv, b"UIDL\r\n") == b"+OK unique-id listing follows\r\n1 uid-0000\r\n2 uid-0001\r\n.\r\n"
    assert talk(srv, b"UIDL 2\r\n") == b"+OK 2 uid-0001\r\n"
    assert talk(srv, b"QUIT\r\n") == b"+OK dewey POP3 server signing off (2 messages left)\r\n"
    assert store.drop.committed == set()


def test_quit_in_authorization_state():
    srv, store = make_server(hostname="dewey")
    drain(srv)
    assert talk(srv, b"QUIT\r\n") == b"+OK dewey POP3 server signing off\r\n"
    assert srv.state == CLOSED and store.drop.committed is None


def test_top_returns_headers_blank_line_and_n_body_lines():
    msg = b"From: a\r\nSubject: s\r\n\r\nline1\r\n.line2\r\nline3\r\n"
    srv, _ = make_server([msg])
    login(srv)
    assert talk(srv, b"TOP 1 2\r\n") == (
        b"+OK top of message follows\r\nFrom: a\r\nSubject: s\r\n\r\nline1\r\n..line2\r\n.\r\n"
    )
    assert talk(srv, b"TOP 1 0\r\n") == b"+OK top of message follows\r\nFrom: a\r\nSubject: s\r\n\r\n.\r\n"
    assert talk(srv, b"TOP 1 99\r\n").endswith(b"line3\r\n.\r\n")
    assert talk(srv, b"TOP 1\r\n").startswith(b"-ERR")


def test_capa_lists_rfc2449_capabilities_in_both_states():
    srv, _ = make_server()
    drain(srv)
    out = talk(srv, b"CAPA\r\n")
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"+OK") and out.endswith(b"\r\n.\r\n")
    for cap in (b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"PIPELINING", b"EXPIRE NEVER", b"LOGIN-DELAY 0"):
        assert cap in lines
    assert any(x.startswith(b"IMPLEMENTATION") for x in lines)
    login(srv)
    assert talk(srv, b"capa\r\n").startswith(b"+OK")


# ---------------------------------------------------------------------------
# Commit semantics, locking, errors


def test_dele_takes_effect_only_after_quit():
    srv, store = make_server()
    login(srv)
    talk(srv, b"DELE 1\r\n")
    assert store.drop.committed is None and len(store.drop.messages) == 2
    talk(srv, b"QUIT\r\n")
    assert store.drop.committed == {0}
    assert len(store.drop.messages) == 1


def test_connection_lost_discards_deletions_and_releases():
    srv, store = make_server()
    login(srv)
    talk(srv, b"DELE 1\r\nDELE 2\r\n")
    srv.connection_lost(5.0)
    assert store.drop.committed is None
    assert store.drop.released
    assert len(store.drop.messages) == 2
    assert srv.events()[-1] == SessionEnded("connection_lost", 5.0)
    assert srv.next_deadline() is None
    srv.receive(b"QUIT\r\n", 6.0)  # ignored after the loss
    assert drain(srv) == b"" and store.drop.committed is None


def test_in_use_when_store_returns_none():
    srv, store = make_server()
    store.locked = True
    drain(srv)
    talk(srv, b"USER mrose\r\n")
    assert talk(srv, b"PASS tanstaaf\r\n") == b"-ERR [IN-USE] maildrop already locked\r\n"
    assert srv.state == AUTHORIZATION


def test_bad_password_reply_held_until_delay_and_pipelined_commands_wait():
    srv, _ = make_server(login_failure_delay=3.0)
    drain(srv)
    talk(srv, b"USER mrose\r\n", now=10.0)
    assert talk(srv, b"PASS wrong\r\nNOOP\r\n", now=10.0) == b""
    assert srv.next_deadline() == 13.0
    srv.on_timer(12.9)
    assert drain(srv) == b""
    srv.on_timer(13.0)
    assert drain(srv) == b"-ERR [AUTH] invalid user name or password\r\n+OK\r\n"
    assert srv.failed_logins == 1
    # After a failed PASS, USER must come again.
    assert talk(srv, b"PASS tanstaaf\r\n", now=14.0).startswith(b"-ERR")


def test_bad_apop_is_refused_with_auth_code():
    srv, _ = make_server(apop_challenge=CHALLENGE, login_failure_delay=0)
    drain(srv)
    assert talk(srv, b"APOP mrose 00000000000000000000000000000000\r\n") == b"-ERR [AUTH] permission denied\r\n"
    assert talk(srv, b"APOP nobody c4c9334bac560ecc979e58001b3e22fb\r\n").startswith(b"-ERR [AUTH]")


def test_apop_unavailable_without_challenge():
    srv, _ = make_server()
    drain(srv)
    assert talk(srv, b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n").startswith(b"-ERR")
    assert srv.state == AUTHORIZATION


def test_commands_in_wrong_state_get_err():
    srv, _ = make_server()
    drain(srv)
    assert talk(srv, b"STAT\r\n").startswith(b"-ERR")
    assert talk(srv, b"RETR 1\r\n").startswith(b"-ERR")
    login(srv)
    assert talk(srv, b"USER mrose\r\n").startswith(b"-ERR")
    assert talk(srv, b"RETR 0\r\n").startswith(b"-ERR")
    assert talk(srv, b"RETR x\r\n").startswith(b"-ERR")


def test_line_limit_answers_err_and_carries_on():
    srv, _ = make_server()
    drain(srv)
    assert talk(srv, b"NOOP " + b"a" * 300 + b"\r\n") == b"-ERR command line too long\r\n"
    # An over-long line arriving in pieces, without its end yet.
    assert talk(srv, b"USER " + b"b" * 200) == b""
    assert talk(srv, b"c" * 200) == b""
    assert talk(srv, b"d" * 10 + b"\r\nNOOP\r\n") == b"-ERR command line too long\r\n+OK\r\n"
    assert srv.lines_too_long == 2
    # 255 octets including CRLF is allowed.
    line = b"USER " + b"u" * (255 - 7) + b"\r\n"
    assert len(line) == 255
    assert talk(srv, line).startswith(b"+OK")


def test_unknown_command_and_error_budget_hangs_up():
    srv, store = make_server(max_errors=10)
    login(srv)
    srv.events()
    out = talk(srv, b"FOO\r\n")
    assert out == b"-ERR unknown command\r\n"
    for _ in range(8):
        talk(srv, b"BAR baz\r\n")
    assert srv.state == TRANSACTION
    out = talk(srv, b"\r\n")
    assert out.endswith(b"-ERR too many errors, closing connection\r\n")
    evs = srv.events()
    assert SessionEnded("errors", 1.0) in evs and CloseRequested(1.0) in evs
    assert store.drop.released and store.drop.committed is None


def test_autologout_after_idle_timeout_without_update():
    srv, store = make_server(idle_timeout=600.0)
    login(srv)
    talk(srv, b"DELE 1\r\n", now=100.0)
    assert srv.next_deadline() == 700.0
    srv.on_timer(699.0)
    assert srv.state == TRANSACTION
    srv.on_timer(srv.next_deadline())
    assert drain(srv).startswith(b"-ERR")
    assert srv.events()[-2:] == [SessionEnded("autologout", 700.0), CloseRequested(700.0)]
    assert store.drop.committed is None and store.drop.released
    assert srv.next_deadline() is None


def test_command_events_never_show_password_and_reprs_hide_it():
    srv, _ = make_server()
    drain(srv)
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 1.0)
    evs = srv.events()
    assert evs == [CommandReceived("USER", 1.0), CommandReceived("PASS", 1.0)]
    assert "tanstaaf" not in repr(evs) + repr(srv)
    cl = Pop3Client(now=0.0)
    cl.receive(b"+OK hi\r\n", 0.0)
    cl.user("mrose", now=0.0)
    cl.pass_("tanstaaf", now=0.0)
    assert "tanstaaf" not in repr(cl)
    cl.receive(b"+OK\r\n+OK\r\n", 1.0)
    evs = cl.events()
    assert evs[-1].arg_shown == "****"
    assert "tanstaaf" not in repr(evs)


def test_lowercase_commands_and_bare_lf_accepted():
    srv, _ = make_server()
    drain(srv)
    assert talk(srv, b"user mrose\n").startswith(b"+OK")
    assert talk(srv, b"pass tanstaaf\n").startswith(b"+OK")


# ---------------------------------------------------------------------------
# Dot-stuffing


def test_dot_stuff_examples():
    assert dot_stuff(b"a\r\n.\r\n..b\r\n") == b"a\r\n..\r\n...b\r\n.\r\n"
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b"no final crlf") == b"no final crlf\r\n.\r\n"
    assert dot_unstuff(b"a\r\n..\r\n...b\r\n") == b"a\r\n.\r\n..b\r\n"


lines_st = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(lines=lines_st, cut=st.integers(min_value=1, max_value=50))
def test_dot_stuffing_round_trip_server_to_client(lines, cut):
    msg = b"".join(line + b"\r\n" for line in lines)
    srv, _ = make_server([msg])
    cl = Pop3Client(now=0.0)
    cl.user("mrose", now=0.0)
    cl.pass_("tanstaaf", now=0.0)
    cl.retr(1, now=0.0)
    srv.receive(drain(cl), 0.0)
    wire = drain(srv)
    for i in range(0, len(wire), cut):
        cl.receive(wire[i : i + cut], 1.0)
    resp = [e for e in cl.events() if isinstance(e, ResponseReceived)]
    assert [r.verb for r in resp] == ["USER", "PASS", "RETR"]
    assert resp[-1].ok and resp[-1].body == msg


# ---------------------------------------------------------------------------
# Client parser


def scripted_session():
    """A pipelined command batch and the server's wire answer to it."""
    msgs = [b"Subject: a\r\n\r\n.\r\n..x\r\nhello\r\n", b"Subject: b\r\n\r\n" + b"z" * 300 + b"\r\n", b""]
    srv, _ = make_server(msgs, apop_challenge=CHALLENGE)
    cl = Pop3Client(now=0.0)
    cl.apop("mrose", "tanstaaf", CHALLENGE, now=0.0)
    cl.capa(now=0.0)
    cl.stat(now=0.0)
    cl.list(now=0.0)
    cl.list(2, now=0.0)
    cl.uidl(now=0.0)
    cl.retr(1, now=0.0)
    cl.retr(3, now=0.0)
    cl.retr(9, now=0.0)  # -ERR on a multi-line command: single line
    cl.top(2, 0, now=0.0)
    cl.dele(1, now=0.0)
    cl.quit(now=0.0)
    up = drain(cl)
    srv.receive(up, 0.5)
    return cl, up, drain(srv), msgs


def summarize(evs):
    out = []
    for e in evs:
        if isinstance(e, ResponseReceived):
            out.append((e.verb, e.arg_shown, e.ok, e.text, e.body, e.bytes_up, e.bytes_down))
        else:
            out.append(e)
    return out


def test_client_parses_all_at_once():
    cl, up, wire, msgs = scripted_session()
    cl.receive(wire, 1.0)
    evs = cl.events()
    assert isinstance(evs[0], GreetingReceived) and evs[0].apop_challenge == CHALLENGE
    resp = evs[1:]
    assert [r.verb for r in resp] == [
        "APOP", "CAPA", "STAT", "LIST", "LIST", "UIDL", "RETR", "RETR", "RETR", "TOP", "DELE", "QUIT"
    ]
    assert resp[1].body is not None and b"PIPELINING\r\n" in resp[1].body
    assert resp[2].text == f"3 {sum(map(len, msgs))}"
    assert resp[4].body is None and resp[4].text == f"2 {len(msgs[1])}"
    assert resp[6].body == msgs[0]
    assert resp[7].ok and resp[7].body == b""
    assert not resp[8].ok and resp[8].body is None
    assert resp[9].body == b"Subject: b\r\n\r\n"
    assert resp[-1].ok and cl.closed
    # Byte accounting: every octet of both directions is attributed exactly once.
    assert sum(r.bytes_up for r in resp) == len(up)
    greeting_len = wire.index(b"\r\n") + 2
    assert sum(r.bytes_down for r in resp) + greeting_len == len(wire)


def test_client_parses_one_byte_at_a_time_and_random_chunks():
    cl, _, wire, _ = scripted_session()
    cl.receive(wire, 1.0)
    reference = summarize(cl.events())
    cl2, _, wire2, _ = scripted_session()
    for i in range(len(wire2)):
        cl2.receive(wire2[i : i + 1], 1.0)
    assert summarize(cl2.events()) == reference
    rnd = random.Random(7)
    for _ in range(20):
        cl3, _, wire3, _ = scripted_session()
        i = 0
        while i < len(wire3):
            n = rnd.randint(1, 40)
            cl3.receive(wire3[i : i + n], 1.0)
            i += n
        assert summarize(cl3.events()) == reference


def test_client_with_trailing_data_keeps_the_partial_response():
    cl = Pop3Client(now=0.0)
    cl.stat(now=0.0)
    cl.retr(1, now=0.0)
    cl.receive(b"+OK ready\r\n+OK 1 5\r\n+OK 5 octets\r\nab", 2.0)
    evs = cl.events()
    assert [type(e) for e in evs] == [GreetingReceived, ResponseReceived]
    assert cl.outstanding == 1
    cl.receive(b"c\r\n", 3.0)
    cl.receive(b".\r", 3.5)
    assert cl.events() == []
    cl.receive(b"\n", 4.0)
    (r,) = cl.events()
    assert r.body == b"abc\r\n"
    assert r.t_first_byte == 2.0 and r.t_done == 4.0 and r.t_sent == 0.0


def test_client_timestamps_and_unexpected_lines():
    cl = Pop3Client(now=0.0)
    cl.receive(b"+OK hi\r\n-ERR autologout\r\n", 1.0)
    assert [type(e) for e in cl.events()] == [GreetingReceived]
    assert cl.unexpected_octets == len(b"-ERR autologout\r\n")
    cl.noop(now=2.0)
    cl.receive(b"+O", 3.0)
    cl.receive(b"K\r\n", 4.0)
    (r,) = cl.events()
    assert (r.t_sent, r.t_first_byte, r.t_done, r.bytes_up, r.bytes_down) == (2.0, 3.0, 4.0, 6, 5)


def test_client_counts_garbage_status_lines():
    cl = Pop3Client(now=0.0)
    cl.receive(b"+OK\r\n", 0.0)
    cl.noop(now=0.0)
    cl.receive(b"HELLO?\r\n", 1.0)
    (r,) = cl.events()[1:]
    assert not r.ok and r.text == "HELLO?" and cl.bad_responses == 1


def test_client_connection_lost_reports_unanswered():
    cl = Pop3Client(now=0.0)
    cl.receive(b"+OK\r\n", 0.0)
    cl.retr(1, now=0.0)
    cl.dele(1, now=0.0)
    cl.receive(b"+OK 5 octets\r\nab", 1.0)
    cl.events()
    cl.connection_lost(2.0)
    # what had come of RETR's answer is reported (the octets the loss wasted)
    assert cl.events() == [ConnectionLost(("RETR", "DELE"), 2.0, partial_octets=16)]
    with pytest.raises(LocalProtocolError):
        cl.noop(now=3.0)


def test_client_refuses_bad_arguments():
    cl = Pop3Client(now=0.0)
    with pytest.raises(LocalProtocolError):
        cl.user("a\r\nDELE 1", now=0.0)
    with pytest.raises(LocalProtocolError):
        cl.command("RETR", "1 2", now=0.0)
    with pytest.raises(LocalProtocolError):
        cl.user("x" * 300, now=0.0)
    assert drain(cl) == b""


def test_server_fed_at_once_byte_by_byte_and_with_trailing_partial_line():
    script = b"USER mrose\r\nPASS tanstaaf\r\nSTAT\r\nLIST\r\nRETR 2\r\nDELE 1\r\nUIDL\r\nQUIT\r\n"
    srv, store = make_server()
    srv.receive(script, 1.0)
    whole = drain(srv)
    assert store.drop.committed == {0}
    srv2, store2 = make_server()
    for i in range(len(script)):
        srv2.receive(script[i : i + 1], 1.0)
    assert drain(srv2) == whole and store2.drop.committed == {0}
    srv3, store3 = make_server()
    srv3.receive(script[:-6] + b"QU", 1.0)  # ends with a partial QUIT
    partial = drain(srv3)
    assert whole.startswith(partial) and store3.drop.committed is None
    srv3.receive(b"IT\r\n", 2.0)
    assert partial + drain(srv3) == whole and store3.drop.committed == {0}


# ---------------------------------------------------------------------------
# Storage as an effect: the server asks, the driver answers (complete)


def raw_server(**kw):
    kw.setdefault("now", 0.0)
    srv = Pop3Server(FakeAuth(), **kw)
    drain(srv)
    return srv


def effects(srv):
    return [e for e in srv.events() if isinstance(e, Effect)]


def asked_to_open(srv, now=1.0):
    """USER and PASS with the right password: the OpenMaildrop the server asks for."""
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", now)
    (opening,) = effects(srv)
    drain(srv)
    return opening


def test_login_asks_to_open_the_maildrop_and_pipelined_commands_wait():
    srv = raw_server()
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\nSTAT\r\nRETR 1\r\nQUIT\r\n", 1.0)
    assert drain(srv) == b"+OK mrose is a real hoopy frood\r\n"  # no +OK to PASS yet
    (opening,) = effects(srv)
    assert opening == OpenMaildrop("mrose") and srv.state == AUTHORIZATION
    handle = object()
    srv.complete(opening, MaildropListing(handle, ((120, "u1"), (200, "u2"))), 2.0)
    assert drain(srv) == b"+OK mrose's maildrop has 2 messages (320 octets)\r\n+OK 2 320\r\n"
    (reading,) = effects(srv)
    assert reading == ReadMessage(handle, 0)
    srv.complete(reading, sized(120, b"1"), 3.0)
    assert drain(srv) == b"+OK 120 octets\r\n" + sized(120, b"1") + b".\r\n"
    (commit,) = effects(srv)
    assert commit == CommitMaildrop(handle, frozenset()) and srv.state == UPDATE
    assert drain(srv) == b""  # signing off only once the store has committed
    srv.complete(commit, None, 4.0)
    assert drain(srv) == b"+OK pop.isp.example POP3 server signing off (2 messages left)\r\n"
    assert srv.state == CLOSED


def test_dele_is_committed_by_the_store_only_in_update_state():
    srv = raw_server()
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 1.0)
    (opening,) = effects(srv)
    srv.complete(opening, MaildropListing("h", ((10, "a"), (20, "b"))), 1.0)
    srv.receive(b"DELE 2\r\nRSET\r\nDELE 1\r\n", 2.0)
    assert effects(srv) == []  # DELE only marks
    srv.receive(b"QUIT\r\n", 3.0)
    (commit,) = effects(srv)
    assert commit == CommitMaildrop("h", frozenset({0}))
    srv.complete(commit, OSError(5, "I/O error"), 4.0)
    assert drain(srv).endswith(b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
    assert srv.state == CLOSED and srv.messages_deleted == 0


def test_store_failures_answer_sys_temp_and_the_session_goes_on():
    srv = raw_server()
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 1.0)
    (opening,) = effects(srv)
    srv.complete(opening, OSError(2, "gone"), 1.0)
    assert drain(srv).endswith(b"-ERR [SYS/TEMP] unable to read maildrop\r\n")
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 2.0)
    (opening,) = effects(srv)
    srv.complete(opening, MaildropListing("h", ((10, "a"),)), 2.0)
    srv.receive(b"TOP 1 0\r\nNOOP\r\n", 3.0)
    (reading,) = effects(srv)
    srv.complete(reading, FileNotFoundError(2, "removed"), 3.0)
    assert drain(srv).endswith(b"-ERR [SYS/TEMP] unable to read message\r\n+OK\r\n")
    assert srv.state == TRANSACTION


def test_late_answer_to_open_after_the_connection_is_gone_releases_the_lock():
    srv = raw_server()
    opening = asked_to_open(srv)
    srv.connection_lost(2.0)
    assert srv.events() == [SessionEnded("connection_lost", 2.0)]
    srv.complete(opening, MaildropListing("h", ()), 3.0)
    assert srv.events() == [ReleaseMaildrop("h")] and drain(srv) == b""


def test_autologout_and_lost_connection_release_without_commit():
    for end in ("timer", "lost"):
        srv = raw_server(idle_timeout=600.0)
        srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 1.0)
        (opening,) = effects(srv)
        srv.complete(opening, MaildropListing("h", ((10, "a"),)), 1.0)
        srv.receive(b"DELE 1\r\n", 2.0)
        if end == "timer":
            srv.on_timer(602.0)
        else:
            srv.connection_lost(3.0)
        assert effects(srv) == [ReleaseMaildrop("h")]  # never CommitMaildrop
        assert srv.state == CLOSED


# ---------------------------------------------------------------------------
# Facing hostile clients (issue 10)


def logged_in(srv, listing=((10, "a"),), handle="h", now=1.0):
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", now)
    (opening,) = effects(srv)
    srv.complete(opening, MaildropListing(handle, listing), now)
    while srv.next_deadline() is not None and srv.state == AUTHORIZATION:
        srv.on_timer(srv.next_deadline())
    drain(srv)
    return srv


def test_user_reply_never_echoes_control_octets():
    srv = raw_server()
    srv.receive(b"USER a\x00b\tc\x1b[2J\r\n", 1.0)
    reply = drain(srv)
    assert reply == b"+OK send PASS\r\n"
    srv.receive(b"USER alice\r\n", 1.0)
    assert drain(srv) == b"+OK alice is a real hoopy frood\r\n"


def test_right_and_wrong_passwords_are_answered_at_the_same_time():
    """The answer's time tells nothing: a right password waits ``auth_delay``
    as a wrong one does (2,000 guesses took 13 s when only failures waited)."""
    times = {}
    for password in (b"tanstaaf", b"wrong"):
        srv = raw_server(auth_delay=2.0, login_failure_delay=2.0)
        srv.receive(b"USER mrose\r\nPASS " + password + b"\r\n", 10.0)
        drain(srv)
        for e in effects(srv):  # a right password opens the maildrop at once...
            srv.complete(e, MaildropListing("h", ()), 10.0)
        assert drain(srv) == b""  # ...but its answer waits like the failure's
        times[password] = srv.next_deadline()
        srv.on_timer(times[password])
        assert drain(srv).startswith(b"+OK" if password == b"tanstaaf" else b"-ERR [AUTH]")
    assert times[b"tanstaaf"] == times[b"wrong"] == 12.0


def test_failed_logins_are_reported_and_throttled_across_sessions():
    from dialsim.mail.accounts import LoginThrottle

    throttle = LoginThrottle(free=1, base=4.0, max_delay=60.0)
    deadlines = []
    for _ in range(3):
        srv = raw_server(throttle=throttle, peer="192.0.2.7", login_failure_delay=1.0)
        srv.receive(b"USER mrose\r\nPASS guess\r\n", 100.0)
        (failed,) = [e for e in srv.events() if isinstance(e, LoginFailed)]
        assert failed == LoginFailed("mrose", "192.0.2.7", 100.0)
        assert "guess" not in repr(failed)
        deadlines.append(srv.next_deadline())
    assert deadlines == [101.0, 104.0, 108.0]
    # the right password from that address now waits as long as a guess would
    srv = raw_server(throttle=throttle, peer="192.0.2.7")
    srv.receive(b"USER mrose\r\nPASS tanstaaf\r\n", 100.0)
    (opening,) = effects(srv)
    srv.complete(opening, MaildropListing("h", ()), 100.0)
    assert drain(srv).endswith(b"frood\r\n") and srv.next_deadline() == 116.0


def test_pipelined_retrs_wait_while_a_reply_is_still_queued():
    """Backpressure: the next RETR is read only once the driver has taken
    most of the previous answer (a client that reads nothing gets nothing more)."""
    big = b"Subject: big\r\n\r\n" + (b"z" * 198 + b"\r\n") * 1000
    srv = logged_in(raw_server(), listing=((len(big), "a"),))
    srv.receive(b"RETR 1\r\n" * 3, 2.0)
    asked = effects(srv)
    assert asked == [ReadMessage("h", 0)]
    srv.complete(asked[0], big, 2.0)
    assert effects(srv) == []  # the second RETR waits: the first answer is not taken
    got = b""
    for _ in range(100):
        chunks = srv.output(3.0)
        got += b"".join(chunks)
        for e in effects(srv):
            srv.complete(e, big, 3.0)
        if not chunks:
            break
    assert got.count(b"+OK %d octets" % len(big)) == 3 and got.endswith(b".\r\n")


def test_output_is_handed_out_in_pieces():
    big = b"x" * 300_000 + b"\r\n"
    srv = logged_in(raw_server(), listing=((len(big), "a"),))
    srv.receive(b"RETR 1\r\n", 2.0)
    (reading,) = effects(srv)
    srv.complete(reading, big, 2.0)
    sizes = []
    while chunks := srv.output(2.0):
        sizes.append(sum(map(len, chunks)))
    assert max(sizes) <= 65536 and sum(sizes) == len(b"+OK 300002 octets\r\n") + len(big) + 3


def test_shutdown_says_sys_temp_and_releases_without_commit():
    srv = logged_in(raw_server())
    srv.receive(b"DELE 1\r\n", 2.0)
    drain(srv)
    srv.shutdown(3.0)
    assert drain(srv) == b"-ERR [SYS/TEMP] server shutting down, try again later\r\n"
    ev = srv.events()
    assert ReleaseMaildrop("h") in ev and SessionEnded("shutdown", 3.0) in ev
    assert CloseRequested(3.0) in ev and not any(isinstance(e, CommitMaildrop) for e in ev)


def test_shutdown_lets_a_commit_under_way_finish():
    srv = logged_in(raw_server())
    srv.receive(b"DELE 1\r\nQUIT\r\n", 2.0)
    (commit,) = [e for e in effects(srv) if isinstance(e, CommitMaildrop)]
    srv.shutdown(3.0)  # in UPDATE: the store is committing; nothing half-done
    srv.complete(commit, None, 3.5)
    assert drain(srv).endswith(b"signing off (maildrop empty)\r\n")
    assert srv.events()[-2:] == [SessionEnded("quit", 3.5), CloseRequested(3.5)]


def test_shutdown_while_opening_releases_the_lock_it_gets():
    srv = raw_server()
    opening = asked_to_open(srv)
    srv.shutdown(2.0)
    assert drain(srv) == b""  # waits for the store's answer
    srv.complete(opening, MaildropListing("h", ()), 2.5)
    assert drain(srv) == b"-ERR [SYS/TEMP] server shutting down, try again later\r\n"
    assert ReleaseMaildrop("h") in srv.events() and srv.state == CLOSED


def test_busy_server_refuses_at_the_greeting():
    srv = Pop3Server(FakeAuth(), now=0.0, busy="too many connections")
    assert drain(srv) == b"-ERR [SYS/TEMP] too many connections\r\n"
    assert srv.events() == [SessionEnded("busy", 0.0), CloseRequested(0.0)]
    assert srv.state == CLOSED


def test_a_slow_reader_mid_retr_is_not_idle():
    """While the client still takes a long reply, the autologout counts from
    the last piece taken, not from its last command."""
    big = b"x" * 300_000 + b"\r\n"
    srv = logged_in(raw_server(idle_timeout=600.0), listing=((len(big), "a"),))
    srv.receive(b"RETR 1\r\n", 2.0)
    (reading,) = effects(srv)
    srv.complete(reading, big, 2.0)
    t = 2.0
    while srv.output(t):
        t += 500.0  # 64 KiB per 500 s: a very slow line
        srv.on_timer(t)
        assert srv.state == TRANSACTION
    assert t > 2000.0 and srv.next_deadline() == t - 500.0 + 600.0
