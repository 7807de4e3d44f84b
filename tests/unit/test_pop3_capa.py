"""RFC 2449 CAPA-driven behaviour: LOGIN-DELAY enforcement and client pipelining."""

from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.proto.pop3 import Pop3Client, Pop3Server

from .mailserve import Served, drain


class _Auth:
    def check_password(self, user, password):
        return (user, password) == ("alice", "pw")

    def apop_secret(self, user):
        return None


class _Drop:
    def __init__(self, msgs):
        self.msgs = msgs
        self.committed = None

    def scan(self):
        return [(len(m), f"u{i}") for i, m in enumerate(self.msgs)]

    def read(self, i):
        return self.msgs[i]

    def commit(self, deleted):
        self.committed = set(deleted)

    def release(self):
        pass


class _Store:
    def __init__(self, msgs):
        self.msgs = msgs

    def open(self, user):
        return _Drop(self.msgs)


def _session(server, lines, now):
    server.receive(b"".join(line + b"\r\n" for line in lines), now)
    return drain(server).decode()


def test_login_delay_enforced_and_advertised():
    logins: dict[str, float] = {}
    s1 = Served(Pop3Server(_Auth(), now=0.0, login_delay=900, last_logins=logins), _Store([b"a\r\n"]))
    drain(s1)
    out = _session(s1, [b"CAPA", b"USER alice", b"PASS pw", b"QUIT"], 10.0)
    assert "LOGIN-DELAY 900\r\n" in out
    assert "maildrop has 1 messages" in out
    s2 = Served(Pop3Server(_Auth(), now=100.0, login_delay=900, last_logins=logins), _Store([b"a\r\n"]))
    drain(s2)
    out = _session(s2, [b"USER alice", b"PASS pw"], 100.0)
    assert "-ERR [LOGIN-DELAY]" in out and s2.state == "AUTHORIZATION"
    s3 = Served(Pop3Server(_Auth(), now=911.0, login_delay=900, last_logins=logins), _Store([b"a\r\n"]))
    drain(s3)
    assert "maildrop has" in _session(s3, [b"USER alice", b"PASS pw"], 911.0)


def _run(server, session, client):
    for _ in range(200):
        a, b = drain(server), drain(client)
        if not a and not b:
            break
        if a:
            client.receive(a, 1.0)
            for ev in client.events():
                session.on_event(ev, 1.0)
        if b:
            server.receive(b, 1.0)


def test_client_pipelines_only_when_offered():
    msgs = [b"m%d\r\n" % i for i in range(5)]
    server = Served(Pop3Server(_Auth(), now=0.0), _Store(msgs))
    client = Pop3Client(now=0.0)
    rs = RetrievalSession(client, user="alice", password="pw",
                          policy=RetrievalPolicy("keep"), seen_uidls=set(), pipelining=True)
    _run(server, rs, client)
    assert rs.server_pipelining and rs.quit_ok
    assert [r[2] for r in rs.retrieved] == msgs


def test_client_does_not_pipeline_without_capa():
    client = Pop3Client(now=0.0)
    rs = RetrievalSession(client, user="alice", password="pw",
                          policy=RetrievalPolicy("keep"), seen_uidls=set(), pipelining=True)

    def feed(data):
        client.receive(data, 1.0)
        for ev in client.events():
            rs.on_event(ev, 1.0)
        return drain(client)

    assert feed(b"+OK ready\r\n") == b"CAPA\r\n"
    assert feed(b"-ERR what?\r\n") == b"USER alice\r\n"
    assert feed(b"+OK\r\n") == b"PASS pw\r\n"
    assert feed(b"+OK in\r\n") == b"STAT\r\n"
    assert feed(b"+OK 2 6\r\n") == b"UIDL\r\n"
    # No PIPELINING offered: one RETR at a time.
    assert feed(b"+OK\r\n1 a\r\n2 b\r\n.\r\n") == b"RETR 1\r\n"
    assert not rs.server_pipelining
