"""dialsim's mail protocols against real, independent mail software.

- dialsim's POP3 server (RFC 1939), run by ``dialsim mailhost`` / the asyncio
  driver, with Python's ``poplib``, ``fetchmail`` (keep + UIDL idfile) and
  ``getmail6`` (SimplePOP3Retriever into a Maildir);
- dialsim's SMTP server (RFC 5321) with ``smtplib`` and ``swaks``: local
  delivery, relay from loopback into ``.outbound``, open relay refused;
- dialsim's POP3 client (Pop3Client + RetrievalSession) against Dovecot, and
  dialsim's SmtpClient against an ``aiosmtpd`` server.

Every message is compared by SHA-256: stored vs delivered.  Where a peer adds a
trace header of its own (fetchmail's ``Received:``, getmail's
``Return-Path:``) or a local-delivery convention changes line ends to LF, the
test removes exactly that header / restores CRLF before comparing, and says so.
"""

from __future__ import annotations

import asyncio
import os
import poplib
import re
import signal
import smtplib
import subprocess
import sys

import pytest

from dialsim.drivers.sockets import ServiceThread, run_client
from dialsim.hosts.mailhost import MailHost, MailHostConfig
from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.mail.delivery import read_queued
from dialsim.mail.maildrop import MaildirStore, to_crlf
from dialsim.proto.pop3 import Pop3Client
from dialsim.proto.smtp import MailSent, SmtpClient

from . import peers
from .peers import sha256

pytestmark = pytest.mark.interop

BIG = b"".join(b"line %05d of a larger attachment-like body, 8-bit: \xe9\xe8\r\n" % i for i in range(2000))
MESSAGES = [
    b"From: carol@far.example\r\nTo: alice@isp.example\r\nSubject: plain\r\n\r\nHello over 28.8k.\r\n",
    b"From: dave@far.example\r\nTo: alice@isp.example\r\nSubject: dots\r\n\r\n"
    b".leading dot\r\n..two dots\r\n.\r\n..\r\nlast line\r\n",
    b"From: erin@far.example\r\nTo: alice@isp.example\r\nSubject: big\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n" + BIG,
]


def lf_to_crlf(data: bytes) -> bytes:
    return to_crlf(data)


def strip_header(data: bytes, name: bytes) -> bytes:
    """Remove one leading header field (with its folded continuation lines)."""
    m = re.match(rb"%s:[^\n]*\n(?:[ \t][^\n]*\n)*" % re.escape(name), data, re.IGNORECASE)
    assert m is not None, f"expected a leading {name!r} header"
    return data[m.end() :]


@pytest.fixture
def mail_tree(tmp_path):
    accounts = tmp_path / "accounts"
    accounts.write_text("alice:secret\nbob:hunter2\n")
    accounts.chmod(0o600)
    root = tmp_path / "maildir"
    store = MaildirStore(root)
    for m in MESSAGES:
        store.deliver("alice", m)
    return root, accounts, store


@pytest.fixture
def mailhost(mail_tree):
    root, accounts, store = mail_tree
    config = MailHostConfig.from_paths(
        root, accounts, pop3=("127.0.0.1", 0), smtp=("127.0.0.1", 0), login_failure_delay=0.1
    )
    mh = ServiceThread(MailHost(config))
    mh.start()
    try:
        yield mh, store
    finally:
        mh.stop()


@pytest.fixture
def mailhost_process(mail_tree):
    """``python -m dialsim mailhost`` as a subprocess; stopped with SIGTERM."""
    root, accounts, store = mail_tree
    pop3, smtp = peers.free_port(), peers.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialsim", "mailhost", "--maildir", str(root), "--accounts",
         str(accounts), "--pop3", f"127.0.0.1:{pop3}", "--smtp", f"127.0.0.1:{smtp}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert f"POP3 on 127.0.0.1:{pop3}" in line and f"SMTP on 127.0.0.1:{smtp}" in line, (
            line + proc.stderr.read() if proc.poll() is not None else line
        )
        yield ("127.0.0.1", pop3), ("127.0.0.1", smtp), store
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            peers._kill_group(proc)
            raise
    assert proc.returncode == 0, err
    assert "stopped" in out


# ---------------------------------------------------------------------------- POP3 server


def test_poplib_against_dialsim_pop3(mailhost):
    mh, store = mailhost
    stored = store.peek("alice")
    assert len(stored) == 3
    seen_uidls = []
    for _ in range(2):
        p = poplib.POP3(*mh.addresses["pop3"], timeout=10)
        try:
            p.user("alice")
            p.pass_("secret")
            uidls = [line.split()[1].decode() for line in p.uidl()[1]]
            sizes = [int(line.split()[1]) for line in p.list()[1]]
            got = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(len(uidls))]
            p.quit()
        finally:
            p.close()
        assert [sha256(g) for g in got] == [sha256(stored[u]) for u in uidls]
        assert sizes == [len(stored[u]) for u in uidls]  # RFC 1939 sizes in CRLF octets
        seen_uidls.append(uidls)
    assert seen_uidls[0] == seen_uidls[1] == list(stored)
    assert store.count("alice") == 3  # nothing deleted


def test_fetchmail_keep_uidl_against_dialsim_pop3(mailhost_process, fetchmail_bin, tmp_path):
    pop3, _smtp, store = mailhost_process
    stored = store.peek("alice")
    out = tmp_path / "delivered"
    out.mkdir()
    mda = tmp_path / "mda.py"
    mda.write_text(
        "import os, sys\n"
        "d = sys.argv[1]\n"
        "data = sys.stdin.buffer.read()\n"
        "open(os.path.join(d, '%04d' % len(os.listdir(d))), 'wb').write(data)\n"
    )
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"poll {pop3[0]} service {pop3[1]} protocol pop3 auth password uidl\n"
        f"  user 'alice' password 'secret' is root here\n"
        f"  sslproto '' keep norewrite mda '{sys.executable} {mda} {out}'\n"
    )
    rc.chmod(0o600)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    argv = [fetchmail_bin, "-f", str(rc), "--nosyslog", "-N", "--idfile", str(tmp_path / "ids")]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    files = sorted(out.iterdir())
    assert len(files) == 3
    # fetchmail prepends its own Received: trace header and hands the MDA LF line ends
    delivered = [lf_to_crlf(strip_header(f.read_bytes(), b"Received")) for f in files]
    assert [sha256(d) for d in delivered] == [sha256(m) for m in stored.values()]
    ids = (tmp_path / "ids").read_text().split()
    assert set(stored) <= set(ids)  # fetchmail remembered our UIDLs

    second = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert second.returncode == 1, second.stdout + second.stderr  # 1: no new mail
    assert len(list(out.iterdir())) == 3
    assert store.count("alice") == 3  # keep: still on the server


def test_getmail_against_dialsim_pop3(mailhost, getmail_bin, tmp_path):
    mh, store = mailhost
    stored = store.peek("alice")
    host, port = mh.addresses["pop3"]
    # getmail refuses to deliver as root: deliver as the non-root mail user into a
    # world-traversable scratch Maildir (pytest's tmp folders are 0700)
    uid, gid, name = peers.mail_owner()
    with peers.scratch_dir() as box:
        box.chmod(0o755)
        maildir = box / "Maildir"
        for sub in ("", "new", "cur", "tmp"):
            (maildir / sub).mkdir(exist_ok=True)
            os.chown(maildir / sub, uid, gid)
        (tmp_path / "getmailrc").write_text(
            "[retriever]\ntype = SimplePOP3Retriever\n"
            f"server = {host}\nport = {port}\nusername = alice\npassword = secret\n"
            f"[destination]\ntype = Maildir\npath = {maildir}/\nuser = {name}\n"
            "[options]\nread_all = false\ndelete = false\nverbose = 0\n"
            "delivered_to = false\nreceived = false\n"
        )
        argv = [getmail_bin, f"--getmaildir={tmp_path}", "--rcfile=getmailrc"]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        files = sorted((maildir / "new").iterdir())
        # getmail adds Return-Path: <unknown> (POP3 has no envelope) and stores LF
        delivered = sorted(
            sha256(lf_to_crlf(strip_header(f.read_bytes(), b"Return-Path"))) for f in files
        )
        assert delivered == sorted(sha256(m) for m in stored.values())

        # getmail's oldmail file holds our UIDLs: a second run fetches nothing
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert len(list((maildir / "new").iterdir())) == 3
    oldmail = "".join(p.read_text() for p in tmp_path.glob("oldmail-*"))
    assert all(u in oldmail for u in stored)
    assert store.count("alice") == 3


# ---------------------------------------------------------------------------- SMTP server


def test_smtplib_against_dialsim_smtp(mailhost):
    mh, store = mailhost
    msg = MESSAGES[1]
    with smtplib.SMTP(*mh.addresses["smtp"], timeout=10) as s:
        s.ehlo()
        assert s.has_extn("pipelining") and s.has_extn("size")
        s.sendmail("carol@far.example", ["bob@isp.example"], msg)
        s.sendmail("bob@isp.example", ["zed@far.example", "alice@isp.example"], MESSAGES[2])
    assert [sha256(m) for m in store.peek("bob").values()] == [sha256(msg)]
    alice = list(store.peek("alice").values())
    assert sha256(MESSAGES[2]) in [sha256(m) for m in alice] and len(alice) == 4
    # the foreign recipient went to the relay queue (loopback = subscriber)
    queued = list((mh.host.config.maildir / ".outbound" / "new").iterdir())
    assert len(queued) == 1
    sender, rcpts, data = read_queued(queued[0])
    assert (sender, rcpts, sha256(data)) == ("bob@isp.example", ["zed@far.example"], sha256(MESSAGES[2]))


def test_swaks_against_dialsim_smtp(mailhost_process, swaks_bin, tmp_path):
    _pop3, smtp, store = mailhost_process
    # swaks sends the data and then "\r\n.\r\n"; given data without a final CRLF,
    # the message on the wire (and so in the Maildir) is the data plus CRLF.
    body = MESSAGES[1].removesuffix(b"\r\n")
    (tmp_path / "msg.eml").write_bytes(body)
    res = subprocess.run(
        [swaks_bin, "--server", smtp[0], "--port", str(smtp[1]), "--from", "carol@far.example",
         "--to", "bob@isp.example", "--data", f"@{tmp_path / 'msg.eml'}", "--timeout", "10"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert [sha256(m) for m in store.peek("bob").values()] == [sha256(MESSAGES[1])]
    raw = next((store.root / "bob" / "new").iterdir()).read_bytes()
    assert raw == MESSAGES[1]  # on disk byte for byte, CRLF kept


def test_open_relay_refused_for_non_subscribers(mail_tree, swaks_bin):
    root, accounts, store = mail_tree
    config = MailHostConfig.from_paths(
        root, accounts, pop3=None, smtp=("127.0.0.1", 0), subscriber_nets=()
    )
    with ServiceThread(MailHost(config)) as mh:
        host, port = mh.addresses["smtp"]
        res = subprocess.run(
            [swaks_bin, "--server", host, "--port", str(port), "--from", "spam@bad.example",
             "--to", "victim@far.example", "--timeout", "10"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode != 0
        assert "554 5.7.1" in res.stdout
        with smtplib.SMTP(host, port, timeout=10) as s:
            refused = s.sendmail("spam@bad.example", ["victim@far.example", "bob@isp.example"], MESSAGES[0])
        assert refused["victim@far.example"][0] == 554
    assert not (root / ".outbound").exists()
    assert [sha256(m) for m in store.peek("bob").values()] == [sha256(MESSAGES[0])]


# ---------------------------------------------------------------------------- dialsim clients


def _retrieve(host: str, port: int, user: str, password: str, policy, seen: set[str]):
    async def go():
        loop = asyncio.get_running_loop()
        client = Pop3Client(now=loop.time())
        session = RetrievalSession(
            client, user=user, password=password, policy=policy, seen_uidls=seen, pipelining=True
        )
        await run_client(
            client, host, port, on_event=lambda m, ev, now: session.on_event(ev, now), timeout=30
        )
        return session

    return asyncio.run(go())


def test_dialsim_pop3_client_against_dovecot(dovecot):
    msgs = [m.replace(b"\r\n", b"\n") for m in MESSAGES]  # Dovecot's Maildir holds LF
    for m in msgs:
        dovecot.deliver(m)
    seen: set[str] = set()
    keep = RetrievalPolicy("keep")
    first = _retrieve(dovecot.host, dovecot.port, dovecot.user, dovecot.password, keep, seen)
    assert first.quit_ok and first.error is None, first
    assert [sha256(body) for _, _, body, _ in first.retrieved] == [sha256(m) for m in MESSAGES]
    uidls = [u for u, _, _, _ in first.retrieved]
    assert len(set(uidls)) == 3 and seen == set(uidls)

    second = _retrieve(dovecot.host, dovecot.port, dovecot.user, dovecot.password, keep, seen)
    assert second.quit_ok and second.retrieved == [] and second.skipped == [1, 2, 3]
    assert len(dovecot.messages()) == 3

    # delete mode with a fresh client: fetches all again (same UIDLs), then DELE + QUIT
    fresh: set[str] = set()
    third = _retrieve(
        dovecot.host, dovecot.port, dovecot.user, dovecot.password, RetrievalPolicy("delete"), fresh
    )
    assert third.quit_ok and [u for u, _, _, _ in third.retrieved] == uidls
    assert sorted(third.deleted) == [1, 2, 3]
    assert dovecot.messages() == []


def test_dialsim_pop3_client_wrong_password_against_dovecot(dovecot):
    s = _retrieve(
        dovecot.host, dovecot.port, dovecot.user, "wrong", RetrievalPolicy("keep"), set()
    )
    assert s.error == "auth" and s.retrieved == []


def test_dialsim_smtp_client_against_aiosmtpd(aiosmtpd_mod):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK stored"

    ctl = Controller(Handler(), hostname="127.0.0.1", port=peers.free_port())
    ctl.start()
    try:

        async def go():
            loop = asyncio.get_running_loop()
            client = SmtpClient(helo_name="pc.isp.example", now=loop.time())
            for i, m in enumerate(MESSAGES):
                client.send_mail("alice@isp.example", [f"r{i}@far.example"], m, loop.time())
            client.quit(loop.time())
            events = []
            await run_client(
                client, ctl.hostname, ctl.port, on_event=lambda m, ev, now: events.append(ev)
            )
            return events

        events = asyncio.run(go())
    finally:
        ctl.stop()
    sent = [e for e in events if isinstance(e, MailSent)]
    assert [(e.index, e.ok, e.code) for e in sent] == [(0, True, 250), (1, True, 250), (2, True, 250)]
    assert [e.rcpt_tos for e in received] == [[f"r{i}@far.example"] for i in range(3)]
    # aiosmtpd's original_content: the message as sent, dot-stuffing removed
    assert [sha256(e.original_content) for e in received] == [sha256(m) for m in MESSAGES]


def test_dialsim_smtp_client_against_dialsim_mailhost(mailhost):
    """Both ends dialsim, over real sockets: the client's SIZE/PIPELINING path."""
    mh, store = mailhost
    host, port = mh.addresses["smtp"]

    async def go():
        loop = asyncio.get_running_loop()
        client = SmtpClient(helo_name="pc.isp.example", now=loop.time())
        client.send_mail("alice@isp.example", ["bob@isp.example"], MESSAGES[2], loop.time())
        client.send_mail("alice@isp.example", ["nobody@isp.example"], MESSAGES[0], loop.time())
        client.quit(loop.time())
        events = []
        await run_client(client, host, port, on_event=lambda m, ev, now: events.append(ev))
        return [e for e in events if isinstance(e, MailSent)]

    sent = asyncio.run(go())
    assert [(e.ok, e.code) for e in sent] == [(True, 250), (False, 550)]
    assert [sha256(m) for m in store.peek("bob").values()] == [sha256(MESSAGES[2])]

