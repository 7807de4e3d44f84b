"""SMTP (RFC 5321 + SIZE, PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES): server and client."""

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import Effect
from dialsim.proto.smtp import (
    MAX_TEXT_LINE,
    ClientSessionEnded,
    CloseRequested,
    CommandReceived,
    DeliverMessage,
    GreetingReceived,
    MailSent,
    MessageAccepted,
    MessageRejected,
    ReplyReceived,
    SessionEnded,
    SmtpClient,
    SmtpServer,
    dot_stuff,
    dot_unstuff,
)

from .mailserve import Served, drain

REPLY_LINE = re.compile(rb"\d{3}[ -][^\r\n]*\r\n")


class MemorySink:
    def __init__(self, users=("jones", "brown", "alice", "bob"), fail=False):
        self.users = set(users)
        self.fail = fail
        self.messages = []
        self.asked = []

    def recipient_ok(self, address, *, from_subscriber):
        self.asked.append((address, from_subscriber))
        local, _, domain = address.rpartition("@")
        if domain.lower() in ("foo.com", "isp.example"):
            if local.lower() in self.users:
                return 250, "2.1.5 OK"
            return 550, "5.1.1 No such user here"
        return 250, "2.1.5 OK, will relay"

    def deliver(self, sender, recipients, data):
        if self.fail:
            raise OSError("disk full")
        self.messages.append((sender, list(recipients), data))


def codes(out: bytes) -> list[int]:
    """Final reply codes in a server's output, in order."""
    assert all(REPLY_LINE.fullmatch(line + b"\r\n") for line in out.split(b"\r\n")[:-1])
    return [int(line[:3]) for line in out.split(b"\r\n") if len(line) >= 4 and line[3:4] == b" "]


def server(**kw):
    kw.setdefault("now", 0.0)
    sink = kw.pop("sink", None) or MemorySink()
    return Served(SmtpServer(sink, **kw), delivery=sink), sink


def wire(client, srv, t=0.0, steps=200):
    """Shuttle bytes between an in-memory client and server until quiet."""
    for _ in range(steps):
        t += 0.1
        a = drain(srv)
        if a:
            client.receive(a, t)
        b = drain(client)
        if b:
            srv.receive(b, t)
        if not a and not b:
            return t
    raise AssertionError("conversation did not settle")


# --------------------------------------------------------------------------- RFC 5321 D.1

D1_CLIENT = [
    b"EHLO bar.com\r\n",
    b"MAIL FROM:<Smith@bar.com>\r\n",
    b"RCPT TO:<Jones@foo.com>\r\n",
    b"RCPT TO:<Green@foo.com>\r\n",
    b"RCPT TO:<Brown@foo.com>\r\n",
    b"DATA\r\n",
    b"Blah blah blah...\r\n....etc. etc. etc.\r\n.\r\n",
    b"QUIT\r\n",
]


def test_rfc5321_d1_server_replies():
    srv, sink = server(hostname="foo.com", local_domains={"foo.com"})
    assert drain(srv) == b"220 foo.com ESMTP dialsim ready\r\n"
    got = []
    for line in D1_CLIENT:
        srv.receive(line, 1.0)
        got.append(codes(drain(srv)))
    assert got == [[250], [250], [250], [550], [250], [354], [250], [221]]
    assert sink.messages == [
        (
            "Smith@bar.com",
            ["Jones@foo.com", "Brown@foo.com"],
            b"Blah blah blah...\r\n...etc. etc. etc.\r\n",
        )
    ]
    ev = srv.events()
    assert MessageAccepted("Smith@bar.com", ("Jones@foo.com", "Brown@foo.com"), 38, 1.0) in ev
    assert ev[-2:] == [SessionEnded("quit", 1.0), CloseRequested(1.0)]
    assert srv.state == "CLOSED"


def test_rfc5321_d1_client_against_scripted_server():
    # The server side of D.1 verbatim (no PIPELINING offered): the client must
    # go one command at a time, survive the 550 for Green and send the message.
    c = SmtpClient(helo_name="bar.com", now=0.0)
    c.send_mail(
        "Smith@bar.com",
        ["Jones@foo.com", "Green@foo.com", "Brown@foo.com"],
        b"Blah blah blah...\r\n...etc. etc. etc.\r\n",
        0.0,
    )
    c.quit(0.0)
    script = [
        (b"220 foo.com Simple Mail Transfer Service Ready\r\n", b"EHLO bar.com\r\n"),
        (
            b"250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
            b"MAIL FROM:<Smith@bar.com> SIZE=38\r\n",
        ),
        (b"250 OK\r\n", b"RCPT TO:<Jones@foo.com>\r\n"),
        (b"250 OK\r\n", b"RCPT TO:<Green@foo.com>\r\n"),
        (b"550 No such user here\r\n", b"RCPT TO:<Brown@foo.com>\r\n"),
        (b"250 OK\r\n", b"DATA\r\n"),
        (
            b"354 Start mail input; end with <CRLF>.<CRLF>\r\n",
            b"Blah blah blah...\r\n....etc. etc. etc.\r\n.\r\n",
        ),
        (b"250 OK\r\n", b"QUIT\r\n"),
        (b"221 foo.com Service closing transmission channel\r\n", b""),
    ]
    for t, (reply, expected) in enumerate(script, 1):
        c.receive(reply, float(t))
        assert drain(c) == expected
    ev = c.events()
    assert MailSent(0, True, 250, 2, "") in ev
    assert isinstance(ev[1], GreetingReceived)
    assert c.extensions == {"8BITMIME": "", "SIZE": "", "DSN": "", "HELP": ""}
    rows = [e for e in ev if isinstance(e, ReplyReceived)]
    assert [(r.command, r.code) for r in rows] == [
        ("GREETING", 220),
        ("EHLO", 250),
        ("MAIL", 250),
        ("RCPT", 250),
        ("RCPT", 550),
        ("RCPT", 250),
        ("DATA", 354),
        ("EOM", 250),
        ("QUIT", 221),
    ]
    eom = rows[7]
    assert (eom.t_sent, eom.t_first_byte, eom.t_done) == (7.0, 8.0, 8.0)
    assert eom.bytes_up == len(script[6][1]) and eom.bytes_down == 8
    assert eom.mail_index == 0
    assert rows[1].bytes_down == len(script[1][0])
    assert ev[-2:] == [CloseRequested(9.0), ClientSessionEnded("quit", 9.0)]


# --------------------------------------------------------------------------- pipelining, chunking

PIPELINED = (
    b"EHLO pc.example\r\n"
    b"MAIL FROM:<alice@isp.example> SIZE=20 BODY=8BITMIME\r\n"
    b"RCPT TO:<bob@isp.example>\r\n"
    b"RCPT TO:<carol@far.example>\r\n"
    b"DATA\r\n"
    b"Subject: \xe9t\xe9\r\n\r\n..dot\r\n.\r\n"
    b"NOOP\r\n"
    b"RCPT TO:<bob@isp.example>\r\n"
    b"QUIT\r\n"
)
PIPELINED_CODES = [220, 250, 250, 250, 554, 354, 250, 250, 503, 221]
PIPELINED_BODY = b"Subject: \xe9t\xe9\r\n\r\n.dot\r\n"


def run_chunks(chunks):
    srv, sink = server()
    out = drain(srv)
    for ch in chunks:
        srv.receive(ch, 1.0)
        out += drain(srv)
    return srv, sink, out


def test_pipelined_all_in_one_chunk():
    srv, sink, out = run_chunks([PIPELINED])
    assert codes(out) == PIPELINED_CODES
    assert b"554 5.7.1 Relay access denied\r\n" in out
    assert sink.messages == [("alice@isp.example", ["bob@isp.example"], PIPELINED_BODY)]
    verbs = [e.verb for e in srv.events() if isinstance(e, CommandReceived)]
    assert verbs == ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "NOOP", "RCPT", "QUIT"]


def test_parser_byte_at_a_time_matches_all_at_once():
    _, sink1, out1 = run_chunks([PIPELINED])
    _, sink2, out2 = run_chunks([PIPELINED[i : i + 1] for i in range(len(PIPELINED))])
    assert out1 == out2 and sink1.messages == sink2.messages


def test_parser_trailing_data():
    # A partial command after the last full one waits for its line end...
    srv, sink, out = run_chunks([b"EHLO a\r\nNOOP\r\nNOO"])
    assert codes(out) == [220, 250, 250]
    srv.receive(b"P\r\n", 2.0)
    assert codes(drain(srv)) == [250]
    # ... commands right after the end of data are handled at once ...
    srv.receive(b"MAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nx\r\n.\r\nRSET\r\nNO", 3.0)
    assert codes(drain(srv)) == [250, 250, 354, 250, 250]
    assert sink.messages == [("", ["bob@isp.example"], b"x\r\n")]
    # ... and anything after QUIT is ignored.
    srv.receive(b"OP\r\nQUIT\r\nNOOP\r\nNOOP\r\n", 4.0)
    assert codes(drain(srv)) == [250, 221]
    srv.receive(b"NOOP\r\n", 5.0)
    assert drain(srv) == b"" and srv.state == "CLOSED"


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_parser_any_chunking(data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(PIPELINED)), max_size=12)))
    chunks = [PIPELINED[a:b] for a, b in zip([0, *cuts], [*cuts, len(PIPELINED)], strict=True)]
    _, sink, out = run_chunks(chunks)
    assert codes(out) == PIPELINED_CODES
    assert sink.messages[0][2] == PIPELINED_BODY


def test_client_pipelines_mail_rcpt_data_in_one_chunk():
    srv, sink = server(subscriber_client=True)
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("alice@isp.example", ["bob@isp.example", "x@far.example"], b"hi\r\n", 0.0)
    c.receive(drain(srv), 0.1)
    srv.receive(drain(c), 0.2)
    c.receive(drain(srv), 0.3)
    assert drain(c) == (
        b"MAIL FROM:<alice@isp.example> SIZE=4\r\n"
        b"RCPT TO:<bob@isp.example>\r\nRCPT TO:<x@far.example>\r\nDATA\r\n"
    )
    # The content goes only after the 354 (RFC 2920: DATA ends a group).
    c.receive(b"250 ok\r\n250 ok\r\n250 ok\r\n", 0.4)
    assert drain(c) == b""
    c.receive(b"354 go\r\n", 0.5)
    assert drain(c) == b"hi\r\n.\r\n"
    # 8-bit data is announced as BODY=8BITMIME when offered (RFC 6152).
    c.send_mail("alice@isp.example", ["bob@isp.example"], b"caf\xe9\r\n", 0.6)
    assert drain(c) == b""  # one transaction at a time
    c.receive(b"250 ok\r\n", 0.7)
    assert drain(c).startswith(b"MAIL FROM:<alice@isp.example> SIZE=6 BODY=8BITMIME\r\n")


def test_client_pipelined_all_recipients_refused_resets_and_goes_on():
    srv, sink = server()  # not a subscriber: far.example is refused
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("alice@isp.example", ["x@far.example"], b"one\r\n", 0.0)
    c.send_mail("alice@isp.example", ["bob@isp.example"], b"two\r\n", 0.0)
    c.quit(0.0)
    wire(c, srv)
    ev = c.events()
    sent = [e for e in ev if isinstance(e, MailSent)]
    assert sent == [
        MailSent(0, False, 554, 0, "every recipient refused"),
        MailSent(1, True, 250, 1, ""),
    ]
    cmds = [(e.command, e.code) for e in ev if isinstance(e, ReplyReceived)]
    assert ("DATA", 554) in cmds and ("RSET", 250) in cmds
    assert [m[2] for m in sink.messages] == [b"two\r\n"]
    assert srv.errors == 0


# --------------------------------------------------------------------------- dot-stuffing

line_text = st.binary(max_size=120).map(lambda b: b.translate(None, b"\r\n"))


@given(st.lists(st.one_of(line_text, st.sampled_from([b".", b"..", b". ", b".\r", b""]))))
@settings(max_examples=150, deadline=None)
def test_dot_stuffing_round_trip_through_client_and_server(lines):
    data = b"".join(line + b"\r\n" for line in lines)
    assert dot_unstuff(dot_stuff(data)) == data
    assert b"\r\n.\r\n" not in b"\r\n" + dot_stuff(data)
    srv, sink = server()
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("alice@isp.example", ["bob@isp.example"], data, 0.0)
    c.quit(0.0)
    wire(c, srv)
    assert sink.messages == [("alice@isp.example", ["bob@isp.example"], data)]
    assert MailSent(0, True, 250, 1, "") in c.events()


def test_dot_stuff_examples():
    assert dot_stuff(b".\r\n") == b"..\r\n"
    assert dot_stuff(b"a\r\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n"
    assert dot_unstuff(b"..\r\n...c\r\n") == b".\r\n..c\r\n"


def test_three_messages_arrive_with_equal_sha256():
    srv, sink = server(subscriber_client=True)
    c = SmtpClient(helo_name="pc.isp.example", now=0.0)
    msgs = [
        b"From: alice@isp.example\r\nSubject: 1\r\n\r\n.\r\n..\r\nend\r\n",
        bytes(range(256)).replace(b"\n", b"").replace(b"\r", b"") * 3 + b"\r\n",
        b"\r\n".join(b"line %d" % i for i in range(500)) + b"\r\n",
    ]
    for m in msgs:
        c.send_mail("alice@isp.example", ["bob@isp.example", "x@far.example"], m, 0.0)
    c.quit(0.0)
    wire(c, srv)
    got = [hashlib.sha256(m[2]).hexdigest() for m in sink.messages]
    assert got == [hashlib.sha256(m).hexdigest() for m in msgs]
    ev = c.events()
    assert [e.index for e in ev if isinstance(e, MailSent) and e.ok] == [0, 1, 2]
    assert srv.messages_accepted == 3
    assert ClientSessionEnded("quit", ev[-1].now) == ev[-1]


def test_client_adds_missing_final_crlf():
    srv, sink = server()
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@isp.example", ["bob@isp.example"], b"no newline", 0.0)
    wire(c, srv)
    assert sink.messages[0][2] == b"no newline\r\n"


# --------------------------------------------------------------------------- SIZE

def test_size_declared_too_big_is_refused():
    srv, sink = server(max_size=1000)
    srv.receive(b"EHLO a\r\n", 1.0)
    assert b"250-SIZE 1000\r\n" in drain(srv)
    srv.receive(b"MAIL FROM:<a@isp.example> SIZE=1001\r\nMAIL FROM:<a@isp.example> SIZE=1000\r\n", 1)
    out = drain(srv)
    assert codes(out) == [552, 250]
    assert out.startswith(b"552 5.3.4 ")
    srv.receive(b"MAIL FROM:<a@isp.example> SIZE=x\r\n", 1.0)
    assert codes(drain(srv)) == [503]  # nested MAIL


def test_size_actual_too_big_is_refused_after_data_and_session_goes_on():
    srv, sink = server(max_size=100)
    body = b"x" * 60 + b"\r\n" + b"y" * 60 + b"\r\n"
    srv.receive(b"EHLO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n", 1)
    srv.receive(body + b".\r\nNOOP\r\n", 2.0)
    assert codes(drain(srv)) == [220, 250, 250, 250, 354, 552, 250]
    assert sink.messages == []
    assert MessageRejected(552, "5.3.4 Message size exceeds fixed maximum message size",
                           124, 2.0) in srv.events()


def test_size_huge_message_memory_bounded():
    srv, sink = server(max_size=1000)
    srv.receive(b"HELO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n", 1)
    chunk = (b"z" * 98 + b"\r\n") * 100
    for _ in range(50):
        srv.receive(chunk, 2.0)
    assert len(srv._msg) <= 2 * 1000 + 1024 + len(chunk)
    srv.receive(b".\r\nQUIT\r\n", 3.0)
    assert codes(drain(srv))[-2:] == [552, 221]


def test_client_skips_message_bigger_than_server_size():
    srv, sink = server(max_size=100)
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@isp.example", ["bob@isp.example"], b"x" * 200 + b"\r\n", 0.0)
    c.send_mail("a@isp.example", ["bob@isp.example"], b"small\r\n", 0.0)
    c.quit(0.0)
    wire(c, srv)
    sent = [e for e in c.events() if isinstance(e, MailSent)]
    assert sent == [MailSent(0, False, 552, 0, "exceeds server SIZE 100"), MailSent(1, True, 250, 1)]
    assert [m[2] for m in sink.messages] == [b"small\r\n"]
    assert srv.commands == 5  # EHLO, MAIL, RCPT, DATA, QUIT: nothing for the skipped one
    assert c.size_limit == 100


# --------------------------------------------------------------------------- relay policy

def test_open_relay_refused_for_outsiders():
    srv, sink = server()
    srv.receive(b"HELO spam\r\nMAIL FROM:<s@spam.example>\r\nRCPT TO:<v@victim.example>\r\n", 1)
    out = drain(srv)
    assert out.endswith(b"554 5.7.1 Relay access denied\r\n")
    assert sink.asked == []  # the server decided; the sink was not even asked
    srv.receive(b"RCPT TO:<Bob@ISP.EXAMPLE>\r\nRCPT TO:<nobody@isp.example>\r\n", 1.0)
    assert codes(drain(srv)) == [250, 550]
    assert srv.recipients == ["Bob@ISP.EXAMPLE"]
    # RFC 5321 4.5.1: <Postmaster> without a domain means the local postmaster.
    srv.receive(b"RCPT TO:<Postmaster>\r\n", 1.0)
    assert sink.asked[-1] == ("postmaster@isp.example", False)


def test_subscribers_may_relay():
    srv, sink = server(subscriber_client=True)
    srv.receive(b"EHLO pc\r\nMAIL FROM:<alice@isp.example>\r\nRCPT TO:<v@far.example>\r\n", 1)
    assert codes(drain(srv)) == [220, 250, 250, 250]
    assert sink.asked == [("v@far.example", True)]


# --------------------------------------------------------------------------- limits and errors

def test_command_line_limit_answered_and_session_continues():
    srv, sink = server()
    drain(srv)
    ok = b"NOOP " + b"a" * (512 - 7) + b"\r\n"
    assert len(ok) == 512
    srv.receive(ok + b"NOOP " + b"a" * 600 + b"\r\nNOOP\r\n", 1.0)
    out = drain(srv)
    assert codes(out) == [250, 500, 250]
    assert b"500 5.5.6 Line too long\r\n" in out
    # The same, byte at a time (the long line is discarded as it comes).
    long = b"HELO " + b"b" * 2000 + b"\r\nNOOP\r\n"
    for i in range(len(long)):
        srv.receive(long[i : i + 1], 2.0)
    assert codes(drain(srv)) == [500, 250]
    assert len(srv._inbuf) == 0 and srv.long_lines == 2


def test_text_line_limit_rejects_message_but_not_session():
    srv, sink = server()
    head = b"HELO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n"
    srv.receive(head + b"x" * 998 + b"\r\n.\r\n", 1.0)  # exactly 1000 octets: fine
    srv.receive(head[8:] + b"y" * 999 + b"\r\n.\r\nNOOP\r\n", 2.0)  # 1001: too long
    assert codes(drain(srv)) == [220, 250, 250, 250, 354, 250, 250, 250, 354, 500, 250]
    assert [len(m[2]) for m in sink.messages] == [1000]
    assert srv.state == "READY"


def test_syntax_sequence_unknown_replies():
    srv, sink = server(max_errors=50)
    drain(srv)
    cases = [
        (b"MAIL FROM:<a@isp.example>\r\n", 503),  # before HELO
        (b"HELO\r\n", 501),
        (b"EHLO pc\r\n", 250),
        (b"RCPT TO:<bob@isp.example>\r\n", 503),
        (b"DATA\r\n", 503),
        (b"MAIL FROM:a@isp.example\r\n", 501),
        (b"MAIL FROM:<not an address>\r\n", 501),
        (b"MAIL FROM:<a@isp.example> FOO=1\r\n", 555),
        (b"MAIL FROM:<@relay.example:a@isp.example> BODY=8BITMIME\r\n", 250),
        (b"RCPT TO:<bob@isp.example> NOTIFY=NEVER\r\n", 555),
        (b"DATA\r\n", 554),  # no valid recipients yet
        (b"VRFY bob\r\n", 252),
        (b"EXPN staff\r\n", 502),
        (b"XYZZY\r\n", 500),
        (b"\r\n", 500),
        (b"RSET\r\n", 250),
    ]
    for line, code in cases:
        srv.receive(line, 1.0)
        assert codes(drain(srv)) == [code], line
    assert srv.state == "READY"


def test_helo_gives_no_esmtp_parameters():
    srv, sink = server()
    srv.receive(b"HELO a\r\nMAIL FROM:<a@isp.example> SIZE=10\r\n", 1.0)
    assert codes(drain(srv)) == [220, 250, 555]


def test_error_budget_closes_with_421():
    srv, sink = server(max_errors=5)
    srv.receive(b"BAD\r\n" * 10, 1.0)
    out = drain(srv)
    assert codes(out) == [220, 500, 500, 500, 500, 500, 421]
    assert out.endswith(b"too many errors, closing\r\n")
    assert srv.events()[-2:] == [SessionEnded("errors", 1.0), CloseRequested(1.0)]
    assert srv.next_deadline() is None


def test_server_timeout_5_minutes():
    srv, sink = server(now=10.0)
    drain(srv)
    assert srv.next_deadline() == 310.0
    srv.receive(b"HELO a\r\n", 100.0)
    assert srv.next_deadline() == 400.0
    srv.on_timer(399.0)
    assert srv.state == "READY"
    srv.on_timer(srv.next_deadline())
    assert codes(drain(srv)) == [250, 421]
    assert srv.events()[-2:] == [SessionEnded("timeout", 400.0), CloseRequested(400.0)]


def test_deliver_failure_gives_451():
    sink = MemorySink(fail=True)
    srv, _ = server(sink=sink)
    srv.receive(b"HELO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\n", 1.0)
    srv.receive(b"DATA\r\nhi\r\n.\r\n", 1.0)
    assert codes(drain(srv))[-1] == 451
    assert not any(isinstance(e, MessageAccepted) for e in srv.events())


def test_delivery_is_an_effect_and_250_waits_for_its_answer():
    """The server asks for delivery and reads no further command until the
    store answers: 250 only then; pipelined commands behind the data wait."""
    srv = SmtpServer(MemorySink(), now=0.0)
    srv.receive(b"EHLO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n", 1.0)
    assert codes(drain(srv)) == [220, 250, 250, 250, 354]
    srv.events()
    srv.receive(b"hi\r\n.\r\nNOOP\r\nQUIT\r\n", 2.0)
    assert drain(srv) == b""  # neither 250 nor the NOOP's answer yet
    (effect,) = srv.events()
    assert effect == DeliverMessage("a@isp.example", ("bob@isp.example",), b"hi\r\n")
    assert isinstance(effect, Effect) and srv.next_deadline() is None
    srv.complete(DeliverMessage("a@isp.example", ("bob@isp.example",), b"hi\r\n"), None, 3.0)
    assert drain(srv) == b""  # an equal effect is not the one asked for
    srv.complete(effect, None, 3.0)
    assert codes(drain(srv)) == [250, 250, 221]
    ev = srv.events()
    assert ev[0] == MessageAccepted("a@isp.example", ("bob@isp.example",), 4, 3.0)
    assert ev[-2:] == [SessionEnded("quit", 3.0), CloseRequested(3.0)]

    failing = SmtpServer(MemorySink(), now=0.0)
    failing.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nx\r\n.\r\n", 1.0)
    (effect,) = [e for e in failing.events() if isinstance(e, DeliverMessage)]
    failing.complete(effect, OSError(28, "No space left on device"), 2.0)
    assert drain(failing).endswith(b"451 4.3.0 Local error in processing (OSError)\r\n")
    assert failing.state == "READY"


def test_answer_after_connection_loss_is_ignored():
    srv = SmtpServer(MemorySink(), now=0.0)
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nx\r\n.\r\n", 1.0)
    (effect,) = [e for e in srv.events() if isinstance(e, DeliverMessage)]
    srv.connection_lost(2.0)
    drain(srv)
    srv.complete(effect, None, 3.0)
    assert drain(srv) == b"" and srv.state == "CLOSED" and srv.messages_accepted == 0


def test_eight_bit_detection_does_not_walk_the_message_in_python():
    """BODY=8BITMIME is chosen by a C-speed test of the data (bytes.isascii),
    never by iterating over its bytes in Python (``max(data)`` did)."""

    class NoWalk(bytes):
        def __iter__(self):
            raise AssertionError("walked the message byte by byte")

    c = SmtpClient(helo_name="pc", now=0.0)
    c.receive(b"220 ok\r\n", 0.0)
    c.receive(b"250-mx\r\n250-8BITMIME\r\n250 PIPELINING\r\n", 0.0)
    drain(c)
    c.send_mail("a@x.example", ["b@y.example"], NoWalk(b"Subject: x\r\n\r\n\xe9t\xe9\r\n"), 0.0)
    assert drain(c).startswith(b"MAIL FROM:<a@x.example> BODY=8BITMIME\r\n")
    c2 = SmtpClient(helo_name="pc", now=0.0)
    c2.receive(b"220 ok\r\n250-mx\r\n250 8BITMIME\r\n", 0.0)
    drain(c2)
    c2.send_mail("a@x.example", ["b@y.example"], NoWalk(b"Subject: x\r\n\r\nplain\r\n"), 0.0)
    assert drain(c2) == b"MAIL FROM:<a@x.example>\r\n"


def test_connection_lost_mid_data_discards_message():
    srv, sink = server()
    srv.receive(b"HELO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\n", 1.0)
    srv.receive(b"DATA\r\nhalf a mess", 1.0)
    srv.connection_lost(2.0)
    assert sink.messages == [] and srv.state == "CLOSED"
    assert srv.events()[-1] == SessionEnded("connection lost", 2.0)
    assert srv.next_deadline() is None


def test_dispatch_table_built_from_methods():
    assert set(SmtpServer._DISPATCH) == {
        "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "QUIT", "STARTTLS"
    }
    for row in SmtpServer.TRANSITIONS.values():
        assert set(row.values()) <= set(SmtpServer.TRANSITIONS)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.sampled_from(
                [
                    b"EHLO x\r\n", b"HELO x\r\n", b"MAIL FROM:<a@isp.example>\r\n",
                    b"RCPT TO:<bob@isp.example>\r\n", b"RCPT TO:<z@far.example>\r\n",
                    b"DATA\r\n", b".\r\n", b"\r\n.\r\n", b"RSET\r\n", b"NOOP\r\n",
                    b"QUIT\r\n", b"\r\n", b"\n", b"\xff\x00\r\n", b"A" * 600,
                ]
            ),
        ),
        max_size=30,
    ),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_fuzz_server_never_raises_and_replies_are_well_formed(chunks, subscriber):
    srv, sink = server(subscriber_client=subscriber, max_size=2000)
    out = drain(srv)
    for i, ch in enumerate(chunks):
        srv.receive(ch, float(i))
        assert srv.state in SmtpServer.TRANSITIONS
        out += drain(srv)
    srv.on_timer(1e9)
    out += drain(srv)
    assert REPLY_LINE.sub(b"", out) == b""
    assert srv.state == "CLOSED"


# --------------------------------------------------------------------------- client details

def test_client_falls_back_to_helo_and_does_not_pipeline():
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@x.example", ["b@y.example", "c@y.example"], b"m\r\n", 0.0)
    c.receive(b"220 old.example SMTP\r\n", 1.0)
    assert drain(c) == b"EHLO pc\r\n"
    c.receive(b"500 Command unrecognized\r\n", 2.0)
    assert drain(c) == b"HELO pc\r\n"
    c.receive(b"250 old.example\r\n", 3.0)
    assert drain(c) == b"MAIL FROM:<a@x.example>\r\n"
    c.receive(b"250 ok\r\n", 4.0)
    assert drain(c) == b"RCPT TO:<b@y.example>\r\n"
    c.receive(b"250 ok\r\n", 5.0)
    assert drain(c) == b"RCPT TO:<c@y.example>\r\n"
    c.receive(b"250 ok\r\n", 6.0)
    assert drain(c) == b"DATA\r\n"


def test_client_reply_parser_chunking_is_invisible():
    script = (
        b"220 s ESMTP\r\n250-s hi\r\n250-PIPELINING\r\n250 SIZE 5000\r\n"
        b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"
    )

    def run(chunks):
        c = SmtpClient(helo_name="pc", now=0.0)
        c.send_mail("a@x.example", ["b@y.example"], b"m\r\n", 0.0)
        for ch in chunks:
            c.receive(ch, 1.0)
        return [e for e in c.events() if not isinstance(e, ReplyReceived)], drain(c)

    once = run([script])
    assert run([script[i : i + 1] for i in range(len(script))]) == once
    assert MailSent(0, True, 250, 1) in once[0]
    # garbage and trailing partial reply: counted / kept, never raised
    c = SmtpClient(helo_name="pc", now=0.0)
    c.receive(b"hello there\r\n22", 1.0)
    assert c.malformed_replies == 1 and c.events() == []
    c.receive(b"0 ok\r\n", 2.0)
    ev = c.events()
    assert ev[0].command == "GREETING" and ev[0].t_first_byte == 1.0 and ev[0].bytes_down == 8


def test_client_timeout_and_connection_loss():
    c = SmtpClient(helo_name="pc", now=5.0)
    assert c.next_deadline() == 305.0  # RFC 5321 4.5.3.2.1: 5 minutes for the greeting
    c.send_mail("a@x.example", ["b@y.example"], b"m\r\n", 5.0)
    c.on_timer(c.next_deadline())
    ev = c.events()
    assert MailSent(0, False, 0, 0, "timeout") in ev and ev[-1] == ClientSessionEnded("timeout", 305.0)
    assert CloseRequested(305.0) in ev and c.next_deadline() is None

    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@x.example", ["b@y.example"], b"m\r\n", 0.0)
    c.receive(b"220 s\r\n250-s\r\n250 PIPELINING\r\n", 1.0)
    c.receive(b"250 ok\r\n250 ok\r\n354 go\r\n", 2.0)
    assert c.next_deadline() == 2.0 + 600.0  # waiting for the reply to the final dot
    c.connection_lost(3.0)
    assert c.events()[-2:] == [MailSent(0, False, 0, 1, "connection lost"), ClientSessionEnded("connection lost", 3.0)]


def test_client_421_fails_everything():
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@x.example", ["b@y.example"], b"m\r\n", 0.0)
    c.send_mail("a@x.example", ["b@y.example"], b"n\r\n", 0.0)
    c.receive(b"421 s busy, try later\r\n", 1.0)
    ev = c.events()
    assert [e for e in ev if isinstance(e, MailSent)] == [
        MailSent(0, False, 421, 0, "service closing"),
        MailSent(1, False, 421, 0, "service closing"),
    ]
    assert ev[-1] == ClientSessionEnded("service closing", 1.0)
    assert c.send_mail("a@x.example", ["b@y.example"], b"m\r\n", 2.0) == 2
    assert c.events() == [MailSent(2, False, 0, 0, "session ending")]


def test_client_misuse_raises_local_protocol_error():
    c = SmtpClient(helo_name="pc", now=0.0)
    with pytest.raises(LocalProtocolError):
        c.send_mail("a@x.example", [], b"m", 0.0)
    with pytest.raises(LocalProtocolError):
        c.send_mail("a@x.example", ["b@y.example>\r\nRCPT TO:<c@z"], b"m", 0.0)
    c.quit(0.0)
    with pytest.raises(LocalProtocolError):
        c.send_mail("a@x.example", ["b@y.example"], b"m", 0.0)


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from(
                [
                    b"220 s\r\n", b"250-s\r\n", b"250 PIPELINING\r\n", b"250 ok\r\n",
                    b"354 go\r\n", b"550 no\r\n", b"421 bye\r\n", b"500 what\r\n",
                    b"999 x\r\n", b"25", b"0 ok\r\n", b"\r\n",
                ]
            ),
        ),
        max_size=30,
    )
)
@settings(max_examples=200, deadline=None)
def test_fuzz_client_never_raises(chunks):
    c = SmtpClient(helo_name="pc", now=0.0)
    c.send_mail("a@x.example", ["b@y.example", "c@y.example"], b"m\r\n", 0.0)
    c.send_mail("a@x.example", ["b@y.example"], b"n\r\n", 0.0)
    c.quit(0.0)
    for i, ch in enumerate(chunks):
        c.receive(ch, float(i))
        drain(c)
    c.connection_lost(99.0)
    ev = c.events()
    # Every queued message is reported exactly once, whatever the server said.
    assert sorted(e.index for e in ev if isinstance(e, MailSent)) == [0, 1]
    assert isinstance(ev[-1], ClientSessionEnded) and c.next_deadline() is None


# --------------------------------------------------------------------------- issue 10


def send_data(srv, lines: list[bytes], chunk: int = 0) -> int:
    """EHLO..DATA, then ``lines`` (stuffed, CRLF) in ``chunk``-sized pieces; the final code."""
    srv.receive(b"EHLO a\r\nMAIL FROM:<a@isp.example>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n", 1.0)
    drain(srv)
    wire = dot_stuff(b"".join(line + b"\r\n" for line in lines)) + b".\r\n"
    pieces = [wire] if not chunk else [wire[i : i + chunk] for i in range(0, len(wire), chunk)]
    for piece in pieces:
        srv.receive(piece, 2.0)
    return codes(drain(srv))[-1]


def test_the_stuffing_dot_does_not_count_toward_the_1000_octets():
    """RFC 5321 4.5.3.1.6: 1000 octets with CRLF, "not counting the leading dot
    duplicated for transparency"."""
    srv, sink = server()
    assert send_data(srv, [b"." + b"d" * 997]) == 250  # 1001 octets on the wire
    assert sink.messages[-1][2] == b"." + b"d" * 997 + b"\r\n"
    assert send_data(srv, [b"." + b"d" * 998]) == 500  # one more is too long
    assert send_data(srv, [b"e" * 998]) == 250 and send_data(srv, [b"e" * 999]) == 500


def _reference_too_long(lines: list[bytes]) -> bool:
    return any(len(line) + 2 > MAX_TEXT_LINE for line in lines)


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.sampled_from([0, 1, 5, 996, 997, 998, 999, 1000, 2500]), min_size=1, max_size=8),
    dots=st.lists(st.booleans(), min_size=8, max_size=8),
    chunk=st.sampled_from([0, 1, 7, 999, 1000, 1001, 4096]),
)
def test_incremental_line_check_agrees_with_the_rfc_in_any_chunking(lengths, dots, chunk):
    lines = [(b"." if dot and n else b"") + b"q" * (n - (1 if dot and n else 0)) for n, dot in zip(lengths, dots, strict=False)]
    srv, _ = server()
    want = 500 if _reference_too_long(lines) else 250
    assert send_data(srv, lines, chunk) == want


def test_address_literal_of_this_host_is_local():
    srv, sink = server(local_addresses=("127.0.0.1", "::1"))  # not a subscriber: no relay
    srv.receive(b"EHLO a\r\nMAIL FROM:<x@far.example>\r\n", 1.0)
    srv.receive(b"RCPT TO:<bob@[127.0.0.1]>\r\nRCPT TO:<alice@[IPv6:::1]>\r\n", 1.0)
    srv.receive(b"RCPT TO:<bob@[192.0.2.1]>\r\nRCPT TO:<bob@[::1]>\r\n", 1.0)
    assert codes(drain(srv)) == [220, 250, 250, 250, 250, 554, 554]  # [::1] lacks "IPv6:"
    assert srv.recipients == ["bob@isp.example", "alice@isp.example"]


def test_postmaster_without_a_domain_goes_to_the_first_local_domain():
    srv, sink = server(local_domains=("isp.example", "other.example"), sink=MemorySink(users=("postmaster",)))
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n", 1.0)
    assert codes(drain(srv))[-1] == 250 and srv.recipients == ["postmaster@isp.example"]


def test_shutdown_mid_data_says_421_and_stores_nothing():
    srv, sink = server()
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nhalf a mess", 1.0)
    drain(srv)
    srv.shutdown(2.0)
    assert drain(srv).startswith(b"421 4.3.2 mail.isp.example shutting down")
    assert srv.events()[-2:] == [SessionEnded("shutdown", 2.0), CloseRequested(2.0)]
    srv.receive(b"ssage\r\n.\r\n", 3.0)
    assert sink.messages == []


def test_shutdown_during_a_delivery_answers_it_first():
    srv = SmtpServer(MemorySink(), now=0.0)
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nx\r\n.\r\n", 1.0)
    (effect,) = [e for e in srv.events() if isinstance(e, DeliverMessage)]
    drain(srv)
    srv.shutdown(2.0)
    assert drain(srv) == b""  # the delivery's answer comes first
    srv.complete(effect, None, 2.5)
    assert codes(drain(srv)) == [250, 421]  # durable: 250, then goodbye


def test_busy_server_says_421_at_once():
    srv = SmtpServer(MemorySink(), now=0.0, busy="too many connections")
    assert drain(srv) == b"421 4.7.0 mail.isp.example too many connections\r\n"
    assert srv.events() == [SessionEnded("busy", 0.0), CloseRequested(0.0)]


def test_a_client_that_reads_nothing_gets_no_more_answers_queued():
    srv, _ = server()
    srv.receive(b"NOOP\r\n" * 20_000, 1.0)  # 120 kB of pipelined commands, nothing read
    assert srv.commands < 20_000  # it stopped at the high-water mark
    total = drain(srv)  # as the transport takes replies, the rest are answered
    assert total.count(b"250 2.0.0 OK\r\n") == 20_000
