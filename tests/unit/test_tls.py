"""STLS (RFC 2595) and STARTTLS (RFC 3207) as sans-IO: the servers switch their
byte stream to TLS (ssl.SSLObject over MemoryBIO, dialsim.proto.stream), fed
by hand here with a client-side TlsChannel -- no socket anywhere."""

from __future__ import annotations

import ssl

import pytest

from dialsim.hosts import tlscert
from dialsim.proto.events import CloseRequested, SessionEnded
from dialsim.proto.pop3 import CommitMaildrop, MaildropListing, OpenMaildrop, Pop3Server
from dialsim.proto.smtp import DeliverMessage, SmtpServer
from dialsim.proto.stream import SessionStream, TlsChannel

from .mailserve import drain


class Auth:
    def check_password(self, user, password):
        return (user, password) == ("alice", "pw")

    def apop_secret(self, user):
        return None


class Policy:
    def recipient_ok(self, address, *, from_subscriber):
        return 250, "2.1.5 OK"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return tlscert.self_signed(tmp_path_factory.mktemp("tls"), "isp.example")


@pytest.fixture
def contexts(certificate):
    client = ssl.create_default_context(cafile=str(certificate.cert))
    return tlscert.server_context(certificate), client


class TlsPeer:
    """The client's end: plaintext until ``start()``, then a TlsChannel."""

    def __init__(self, server, context: ssl.SSLContext, hostname: str) -> None:
        self.server, self.context, self.hostname = server, context, hostname
        self.tls: TlsChannel | None = None

    def start(self) -> None:
        self.tls = TlsChannel(self.context, server_side=False, server_hostname=self.hostname)
        self.pump()

    def pump(self, now: float = 1.0) -> bytes:
        """Shuttle records until quiet; the plaintext the server said meanwhile."""
        plain = b""
        for _ in range(50):
            moved = False
            if self.tls is not None and self.tls.has_pending:
                self.server.receive(self.tls.pending(), now)
                moved = True
            wire = drain(self.server, now)
            if wire:
                plain += self.tls.feed(wire) if self.tls is not None else wire
                moved = True
            if not moved:
                break
        return plain

    def say(self, line: bytes, now: float = 1.0) -> bytes:
        if self.tls is None:
            self.server.receive(line, now)
        else:
            self.tls.send(line)
        return self.pump(now)


def test_channel_pair_round_trip(contexts):
    server_ctx, client_ctx = contexts
    client = TlsChannel(client_ctx, server_side=False, server_hostname="localhost")
    server = TlsChannel(server_ctx, server_side=True)
    for _ in range(10):
        if client.has_pending:
            server.feed(client.pending())
        if server.has_pending:
            client.feed(server.pending())
    assert client.established and server.established and client.version in ("TLSv1.2", "TLSv1.3")
    client.send(b"x" * 100_000)
    assert server.feed(client.pending()) == b"x" * 100_000


def test_pop3_stls_then_the_whole_session_in_tls(contexts):
    server_ctx, client_ctx = contexts
    srv = Pop3Server(Auth(), now=0.0, tls_context=server_ctx, login_failure_delay=0)
    peer = TlsPeer(srv, client_ctx, "pop.isp.example")
    assert peer.pump().startswith(b"+OK POP3 server ready")
    assert b"\r\nSTLS\r\n" in peer.say(b"CAPA\r\n")
    assert peer.say(b"STLS\r\n") == b"+OK Begin TLS negotiation\r\n"
    peer.start()
    assert peer.tls.established and srv.tls_active
    assert b"STLS" not in peer.say(b"CAPA\r\n")  # RFC 2595: not offered again
    assert peer.say(b"STLS\r\n").startswith(b"-ERR")
    assert peer.say(b"USER alice\r\n").startswith(b"+OK")
    peer.tls.send(b"PASS pw\r\n")
    peer.pump()
    (opening,) = [e for e in srv.events() if isinstance(e, OpenMaildrop)]
    srv.complete(opening, MaildropListing("h", ((3, "u"),)), 1.0)
    assert peer.pump() == b"+OK alice's maildrop has 1 messages (3 octets)\r\n"
    peer.tls.send(b"QUIT\r\n")
    peer.pump()
    (commit,) = [e for e in srv.events() if isinstance(e, CommitMaildrop)]
    srv.complete(commit, None, 1.0)
    assert peer.pump().startswith(b"+OK pop.isp.example POP3 server signing off")
    assert peer.tls.closed  # our close_notify came after the last reply


def test_pop3_stls_discards_commands_sent_before_the_handshake(contexts):
    """No command injection (CVE-2011-0411 style): what followed STLS in the
    same packet, in clear, is never executed."""
    server_ctx, client_ctx = contexts
    srv = Pop3Server(Auth(), now=0.0, tls_context=server_ctx, login_failure_delay=0)
    drain(srv)
    srv.receive(b"STLS\r\nUSER alice\r\nPASS pw\r\n", 1.0)
    assert drain(srv) == b"+OK Begin TLS negotiation\r\n"
    assert srv.events()[-1].verb == "STLS" and srv.state == "AUTHORIZATION"


def test_pop3_stls_refused_without_certificate_and_after_login(contexts):
    srv = Pop3Server(Auth(), now=0.0, login_failure_delay=0)
    drain(srv)
    srv.receive(b"CAPA\r\nSTLS\r\n", 1.0)
    out = drain(srv)
    assert b"STLS\r\n" not in out.split(b"-ERR")[0] and out.endswith(b"-ERR STLS not available\r\n")


def test_tls_garbage_ends_the_session(contexts):
    server_ctx, _ = contexts
    srv = Pop3Server(Auth(), now=0.0, tls_context=server_ctx)
    drain(srv)
    srv.receive(b"STLS\r\n", 1.0)
    drain(srv)
    srv.receive(b"GET / HTTP/1.0\r\n\r\n" * 10, 2.0)
    assert srv.state == "CLOSED" and srv.tls_failure
    assert srv.events()[-2:] == [SessionEnded("tls_failed", 2.0), CloseRequested(2.0)]


def test_smtp_starttls_starts_the_session_over(contexts):
    server_ctx, client_ctx = contexts
    srv = SmtpServer(Policy(), now=0.0, tls_context=server_ctx)
    peer = TlsPeer(srv, client_ctx, "mail.isp.example")
    assert peer.pump().startswith(b"220 ")
    assert peer.say(b"EHLO pc\r\n").endswith(b"250 STARTTLS\r\n")
    assert peer.say(b"MAIL FROM:<a@x.example>\r\nSTARTTLS\r\n").endswith(b"503 5.5.1 Bad sequence of commands\r\n")
    peer.say(b"RSET\r\n")
    assert peer.say(b"STARTTLS\r\n") == b"220 2.0.0 Ready to start TLS\r\n"
    peer.start()
    assert peer.say(b"MAIL FROM:<a@x.example>\r\n").startswith(b"503")  # EHLO again first
    ehlo = peer.say(b"EHLO pc\r\n")
    assert ehlo.startswith(b"250-") and b"STARTTLS" not in ehlo
    out = peer.say(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@isp.example>\r\nDATA\r\n")
    assert out.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    peer.say(b"secret over TLS\r\n.\r\n")
    (effect,) = [e for e in srv.events() if isinstance(e, DeliverMessage)]
    assert effect.data == b"secret over TLS\r\n"
    srv.complete(effect, None, 2.0)
    assert peer.pump().startswith(b"250 2.0.0")


def test_smtp_starttls_without_certificate_is_502():
    srv = SmtpServer(Policy(), now=0.0)
    srv.receive(b"EHLO pc\r\nSTARTTLS\r\n", 1.0)
    out = drain(srv)
    assert b"STARTTLS" not in out.split(b"502")[0] and out.endswith(b"502 5.5.1 Command not implemented\r\n")


def test_session_stream_hands_out_pieces_and_counts_backlog():
    stream = SessionStream()
    stream.write(b"+OK\r\n")
    stream.write(b"a" * 200_000)
    stream.write(b".\r\n")
    assert stream.backlog == 200_008
    pieces = []
    while out := stream.take():
        pieces.append(b"".join(out))
    assert [len(p) for p in pieces] == [65536, 65536, 65536, 200_008 - 3 * 65536]
    assert b"".join(pieces) == b"+OK\r\n" + b"a" * 200_000 + b".\r\n" and stream.backlog == 0
