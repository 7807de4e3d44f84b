"""``dialsim mailhost`` and the asyncio socket driver over real loopback sockets
(RFC 1939 POP3 with poplib, RFC 5321 SMTP with smtplib; no external peers)."""

from __future__ import annotations

import asyncio
import hashlib
import poplib
import smtplib
import socket

import pytest

from dialsim.cli import main
from dialsim.cli_mailhost import parse_address
from dialsim.drivers.sockets import ServiceThread, run_client, serve
from dialsim.hosts.mailhost import MailHost, MailHostConfig, MailHostError, peer_address
from dialsim.mail.delivery import read_queued
from dialsim.mail.maildrop import MaildirStore
from dialsim.proto.pop3 import Pop3Client

MESSAGES = [
    b"From: a@isp.example\r\nSubject: one\r\n\r\nfirst body\r\n",
    b"From: b@isp.example\r\nSubject: two\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n",
]


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def accounts_file(tmp_path):
    p = tmp_path / "accounts"
    p.write_text("alice:secret\nbob:hunter2\n")
    p.chmod(0o600)
    return p


@pytest.fixture
def host(tmp_path, accounts_file):
    config = MailHostConfig.from_paths(
        tmp_path / "maildir",
        accounts_file,
        pop3=("127.0.0.1", 0),
        smtp=("127.0.0.1", 0),
        auth_delay=0.05,
    )
    store = MaildirStore(config.maildir)
    for m in MESSAGES:
        store.deliver("alice", m)
    mh = ServiceThread(MailHost(config))
    mh.start()
    try:
        yield mh, store
    finally:
        mh.stop()


# ---------------------------------------------------------------------------- CLI errors


def run_cli(argv, capsys):
    rc = main(["mailhost", *argv])
    err = capsys.readouterr().err
    return rc, err


def test_cli_bad_address_is_one_line_exit_2(tmp_path, accounts_file, capsys):
    for bad in ("nocolon", "127.0.0.1:port", "127.0.0.1:70000", ":25"):
        rc, err = run_cli(
            ["--maildir", str(tmp_path / "m"), "--accounts", str(accounts_file), "--pop3", bad],
            capsys,
        )
        assert rc == 2
        assert err.count("\n") == 1 and "--pop3" in err and bad in err


def test_cli_insecure_accounts_file(tmp_path, accounts_file, capsys):
    accounts_file.chmod(0o644)
    rc, err = run_cli(["--maildir", str(tmp_path / "m"), "--accounts", str(accounts_file)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "chmod 600" in err


def test_cli_missing_accounts_file(tmp_path, capsys):
    rc, err = run_cli(["--maildir", str(tmp_path / "m"), "--accounts", str(tmp_path / "no")], capsys)
    assert rc == 2 and err.count("\n") == 1 and "cannot read accounts file" in err


def test_cli_maildir_cannot_be_created(tmp_path, accounts_file, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, err = run_cli(["--maildir", str(blocker / "sub"), "--accounts", str(accounts_file)], capsys)
    assert rc == 2 and err.count("\n") == 1 and "cannot create maildir" in err


def test_cli_port_in_use(tmp_path, accounts_file, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rc, err = run_cli(
            ["--maildir", str(tmp_path / "m"), "--accounts", str(accounts_file),
             "--pop3", f"127.0.0.1:{port}", "--smtp", "127.0.0.1:0"],
            capsys,
        )  # fmt: skip
    assert rc == 2 and err.count("\n") == 1 and f"127.0.0.1:{port}" in err


def test_parse_address():
    assert parse_address("127.0.0.1:1110") == ("127.0.0.1", 1110)
    assert parse_address("[::1]:25") == ("::1", 25)
    with pytest.raises(MailHostError):
        parse_address("127.0.0.1")


def test_peer_address_and_subscriber_nets(tmp_path, accounts_file):
    assert str(peer_address(("127.9.8.7", 5))) == "127.9.8.7"
    assert str(peer_address("::ffff:127.0.0.1")) == "127.0.0.1"  # IPv4-mapped
    assert str(peer_address(("::1", 5, 0, 0))) == "::1" and peer_address("garbage") is None
    host = MailHost(MailHostConfig.from_paths(tmp_path / "m", accounts_file))
    assert host.is_subscriber(("127.0.0.1", 5)) and host.is_subscriber(("::1", 5, 0, 0))
    assert host.is_subscriber("::ffff:127.0.0.1")
    assert not host.is_subscriber(("10.0.2.15", 5)) and not host.is_subscriber("garbage")


# ---------------------------------------------------------------------------- end to end


def test_poplib_retrieves_byte_identical_and_uidls_are_stable(host):
    mh, store = host
    stored = store.peek("alice")
    addr = mh.addresses["pop3"]
    uidls = []
    for _ in range(2):
        p = poplib.POP3(*addr, timeout=10)
        p.user("alice")
        p.pass_("secret")
        n, _ = p.stat()
        assert n == 2
        uidls.append([line.split()[1].decode() for line in p.uidl()[1]])
        got = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in (1, 2)]
        assert [sha(g) for g in got] == [sha(stored[u]) for u in uidls[-1]]
        assert got == MESSAGES
        p.quit()
    assert uidls[0] == uidls[1] == list(stored)


def test_dele_commits_only_after_quit(host):
    mh, store = host
    addr = mh.addresses["pop3"]
    p = poplib.POP3(*addr, timeout=10)
    p.user("alice")
    p.pass_("secret")
    p.dele(1)
    p.close()  # dropped line: no QUIT, no UPDATE state
    p2 = None
    for _ in range(100):  # the server may not have seen the drop yet: [IN-USE]
        p2 = poplib.POP3(*addr, timeout=10)
        p2.user("alice")
        try:
            p2.pass_("secret")
            break
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0]
            p2.close()
            p2 = None
    assert p2 is not None
    assert p2.stat()[0] == 2
    p2.dele(1)
    p2.quit()
    assert store.count("alice") == 1


def test_failed_login_reply_is_held_then_sent(host):
    """The held -ERR is a deadline: the driver must fire it, then answer what was
    pipelined behind it."""
    mh, _ = host
    with socket.create_connection(mh.addresses["pop3"], timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"USER alice\r\nPASS wrong\r\nNOOP\r\n")
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"-ERR [AUTH]")
        assert f.readline() == b"+OK\r\n"


def test_smtplib_delivers_byte_identical_and_relays_from_loopback(host):
    mh, store = host
    msg = b"From: x@elsewhere.example\r\nSubject: hi\r\n\r\n.dot line\r\nbody\r\n"
    with smtplib.SMTP(*mh.addresses["smtp"], timeout=10) as s:
        s.sendmail("x@elsewhere.example", ["bob@isp.example"], msg)
        s.sendmail("alice@isp.example", ["carol@far.example"], msg)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@elsewhere.example", ["nobody@isp.example"], msg)
    assert list(store.peek("bob").values()) == [msg]
    queued = list((mh.host.config.maildir / ".outbound" / "new").iterdir())
    assert len(queued) == 1
    assert read_queued(queued[0]) == ("alice@isp.example", ["carol@far.example"], msg)


def test_non_subscriber_cannot_relay(tmp_path, accounts_file):
    config = MailHostConfig.from_paths(
        tmp_path / "maildir", accounts_file, pop3=None, smtp=("127.0.0.1", 0), subscriber_nets=()
    )
    with ServiceThread(MailHost(config)) as mh:
        with smtplib.SMTP(*mh.addresses["smtp"], timeout=10) as s:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
                s.sendmail("x@a.example", ["y@far.example"], b"Subject: x\r\n\r\nx\r\n")
            assert exc.value.recipients["y@far.example"][0] == 554
            s.sendmail("x@a.example", ["bob@isp.example"], b"Subject: x\r\n\r\nx\r\n")
    assert not (tmp_path / "maildir" / ".outbound").exists()
    assert MaildirStore(tmp_path / "maildir").count("bob") == 1


def test_stop_drops_sessions_without_committing(host):
    mh, store = host
    p = poplib.POP3(*mh.addresses["pop3"], timeout=10)
    p.user("alice")
    p.pass_("secret")
    p.dele(1)
    p.dele(2)
    mh.stop()
    assert store.count("alice") == 2
    assert not (mh.host.config.maildir / "alice" / "dialsim-pop3.lock").exists()
    p.close()


class _Scripted:
    """A machine that answers every received chunk with one line and then
    emits the events it was given."""

    def __init__(self, now=0.0, peer=None, emit=()):
        self.emit = list(emit)
        self.out = bytearray(b"+OK hi\r\n")
        self.evs = []
        self.lost = False

    def receive(self, data, now):
        self.out += b"+OK got it\r\n"
        self.evs += [e(now) if callable(e) else e for e in self.emit]

    def output(self, now):
        o, self.out = bytes(self.out), bytearray()
        return [o] if o else []

    def events(self):
        e, self.evs = self.evs, []
        return e

    def next_deadline(self):
        return None

    def on_timer(self, now):
        pass

    def connection_lost(self, now):
        self.lost = True


def test_driver_runs_client_against_driver_server():
    """Both halves of the driver: a scripted server machine and Pop3Client."""

    class Echo(_Scripted):
        def __init__(self, now):
            super().__init__(now)
            self.out = bytearray(b"+OK hello\r\n")

        def receive(self, data, now):
            for line in data.split(b"\r\n")[:-1]:
                self.out += b"+OK " + line + b"\r\n"

    async def go():
        srv = await serve(Echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        client = Pop3Client(now=loop.time())
        seen = []

        def on_event(m, ev, now):
            seen.append(ev)
            if len(seen) == 1:
                m.noop(now=now)
                m.stat(now=now)

        await run_client(client, "127.0.0.1", port, on_event=on_event, until=lambda: len(seen) == 3)
        srv.close()
        await srv.wait_closed()
        return seen

    seen = asyncio.run(go())
    assert [getattr(e, "verb", "greeting") for e in seen] == ["greeting", "NOOP", "STAT"]
    assert seen[2].text == "STAT"


# ---------------------------------------------------------------------------- event dispatch


class CloseRequestedLookalike:
    """Not dialsim.proto.events.CloseRequested, only named like it."""

    def __init__(self, now):
        self.now = now


CloseRequestedLookalike.__name__ = "CloseRequested"


def _talk(emit, sends):
    """Lines a served _Scripted machine answers to ``sends`` lines, and whether
    the server closed the connection afterwards."""

    async def go():
        srv = await serve(lambda now: _Scripted(now, emit=emit), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        lines = [await reader.readline()]
        for _ in range(sends):
            writer.write(b"x\r\n")
            lines.append(await asyncio.wait_for(reader.readline(), 5))
        try:
            closed = await asyncio.wait_for(reader.read(), 0.5) == b""
        except TimeoutError:
            closed = False
        writer.close()
        srv.close()
        await srv.wait_closed()
        return lines, closed

    return asyncio.run(go())


def test_socket_driver_closes_on_the_close_event_class_not_its_name():
    from dialsim.proto.events import CloseRequested

    assert _talk([CloseRequested], 1) == ([b"+OK hi\r\n", b"+OK got it\r\n"], True)
    # a look-alike must not close the connection
    assert _talk([CloseRequestedLookalike], 2) == (
        [b"+OK hi\r\n", b"+OK got it\r\n", b"+OK got it\r\n"], False
    )


def test_app_binding_dispatches_on_event_classes():
    from dialsim.hosts.endpoint import AppBinding
    from dialsim.proto.events import CloseRequested
    from dialsim.proto.tcp import DataReceived

    class Conn:
        def __init__(self):
            self.sent, self.closed, self.evs = [], False, []

        def events(self):
            e, self.evs = self.evs, []
            return e

        def send(self, data):
            self.sent.append(data)

        def close(self):
            self.closed = True

    for emit, closes in (([CloseRequestedLookalike], False), ([CloseRequested], True)):
        conn = Conn()
        binding = AppBinding(conn, _Scripted(emit=emit))
        conn.evs = [DataReceived(b"x\r\n")]
        binding.pump(1.0)
        assert conn.sent == [b"+OK hi\r\n+OK got it\r\n"]
        assert conn.closed is closes and binding.close_requested is closes


# ---------------------------------------------------------------------------- issue 10


def test_postmaster_is_always_accepted(host):
    """RFC 5321 4.5.1: mail for postmaster, with or without a domain, in any case."""
    mh, _ = host
    root = mh.host.config.maildir
    with smtplib.SMTP(*mh.addresses["smtp"], timeout=10) as s:
        s.ehlo()
        for rcpt in ("<postmaster>", "<Postmaster@ISP.EXAMPLE>"):
            s.mail("x@far.example")
            assert s.rcpt(rcpt)[0] == 250
            assert s.data(b"Subject: to the postmaster\r\n\r\nhello\r\n")[0] == 250
    assert len(list((root / "postmaster" / "new").iterdir())) == 2


def test_this_hosts_address_literal_is_a_local_domain(tmp_path, accounts_file):
    config = MailHostConfig.from_paths(
        tmp_path / "maildir", accounts_file, pop3=None, smtp=("127.0.0.1", 0), subscriber_nets=()
    )
    with ServiceThread(MailHost(config)) as mh:
        with smtplib.SMTP(*mh.addresses["smtp"], timeout=10) as s:
            s.sendmail("x@far.example", ["alice@[127.0.0.1]"], b"Subject: lit\r\n\r\nx\r\n")
            with pytest.raises(smtplib.SMTPRecipientsRefused):  # another host's literal
                s.sendmail("x@far.example", ["alice@[192.0.2.1]"], b"Subject: lit\r\n\r\nx\r\n")
    assert MaildirStore(tmp_path / "maildir").count("alice") == 1
    assert not (tmp_path / "maildir" / ".outbound").exists()


def test_bad_maildir_entries_never_drop_the_connection(host):
    mh, store = host
    alice = store.folder("alice")
    (alice / "new" / "9.M9P9Q9.dangling").symlink_to(alice / "gone")
    p = poplib.POP3(*mh.addresses["pop3"], timeout=10)
    p.user("alice")
    p.pass_("secret")  # the dangling link is skipped, the two messages listed
    assert p.stat()[0] == 2
    first = sorted((alice / "new").glob("*,S=*"))[0]
    first.unlink()  # removed between listing and reading
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p.retr(1)
    assert p.noop().startswith(b"+OK")  # the session goes on
    assert p.retr(2)[0].startswith(b"+OK")
    p.quit()
    bob = store.folder("bob")
    bob.mkdir(parents=True)
    (bob / "tmp").write_text("tmp is a file")
    p = poplib.POP3(*mh.addresses["pop3"], timeout=10)
    p.user("bob")
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p.pass_("hunter2")
    assert p.noop().startswith(b"+OK")
    p.quit()


def test_cli_refuses_a_bad_accounts_file_with_file_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "accounts"
    bad.write_text("alice:ok\nCarol:pw\n")
    bad.chmod(0o600)
    rc, err = run_cli(["--maildir", str(tmp_path / "m"), "--accounts", str(bad)], capsys)
    assert rc == 2 and err.count("\n") == 1 and f"{bad}:2: user name 'Carol'" in err
