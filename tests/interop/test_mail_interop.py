"""dialsim's mail protocols against real, independent mail software.

- dialsim's POP3 server (RFC 1939), run by ``dialsim mailhost`` / the asyncio
  driver, with Python's ``poplib``, ``fetchmail`` (keep + UIDL idfile; and with
  its default settings, which take STLS, RFC 2595, given the mail host's
  self-signed certificate to trust as a user would), ``mpop`` (STLS) and
  ``getmail6`` (SimplePOP3Retriever into a Maildir);
- dialsim's SMTP server (RFC 5321) with ``smtplib``, ``swaks`` and ``msmtp``
  (STARTTLS, RFC 3207, pipelining): local delivery, relay from loopback into
  ``.outbound``, open relay refused;
- dialsim's POP3 client (Pop3Client + RetrievalSession) against Dovecot, and
  dialsim's SmtpClient against an ``aiosmtpd`` server.

Every message is compared by SHA-256: stored vs delivered.  Where a peer adds a
trace header of its own (fetchmail's and mpop's ``Received:``, getmail's
``Return-Path:``) or a local-delivery convention changes line ends to LF, the
test removes exactly that header / restores CRLF before comparing, and says so.
"""

from __future__ import annotations

import asyncio
import os
import poplib
import re
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

from ..mailhost_process import MailHostProcess
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
        root, accounts, pop3=("127.0.0.1", 0), smtp=("127.0.0.1", 0), auth_delay=0.1
    )
    mh = ServiceThread(MailHost(config))
    mh.start()
    try:
        yield mh, store
    finally:
        mh.stop()


@pytest.fixture
def mailhost_process(mail_tree):
    """``python -m dialsim mailhost`` as a subprocess (STLS/STARTTLS with its
    self-signed certificate in the maildir); stopped with SIGTERM."""
    root, accounts, store = mail_tree
    mh = MailHostProcess(root, accounts, "--auth-delay", "0.1").start()
    try:
        yield mh.pop3, mh.smtp, store
    finally:
        mh.stop()
    assert mh.returncode == 0, mh.stderr
    assert "stopped" in mh.stdout


def trust_file(store) -> str:
    """The mail host's self-signed certificate, which a careful user trusts by hand."""
    return str(store.root / ".dialsim-tls-cert.pem")


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


def mda_folder(tmp_path):
    """A folder and a tiny MDA script that stores each message it is given there, as is."""
    out = tmp_path / "delivered"
    out.mkdir()
    mda = tmp_path / "mda.py"
    mda.write_text(
        "import os, sys\n"
        "d = sys.argv[1]\n"
        "data = sys.stdin.buffer.read()\n"
        "open(os.path.join(d, '%04d' % len(os.listdir(d))), 'wb').write(data)\n"
    )
    return out, mda


def test_fetchmail_keep_uidl_against_dialsim_pop3(mailhost_process, fetchmail_bin, tmp_path):
    pop3, _smtp, store = mailhost_process
    stored = store.peek("alice")
    out, mda = mda_folder(tmp_path)
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


def test_fetchmail_default_settings_take_stls(mailhost_process, fetchmail_bin, tmp_path):
    """fetchmail as it comes: no ``sslproto`` line, so it sees STLS in CAPA and
    upgrades (it gave up on a -ERR before).  Like a careful user it is told
    to trust the host's self-signed certificate (``sslcertfile``)."""
    pop3, _smtp, store = mailhost_process
    stored = store.peek("alice")
    out, mda = mda_folder(tmp_path)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"poll localhost service {pop3[1]} protocol pop3\n"
        f"  user 'alice' password 'secret' is root here\n"
        f"  sslcertfile '{trust_file(store)}' norewrite mda '{sys.executable} {mda} {out}'\n"
    )
    rc.chmod(0o600)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    argv = [fetchmail_bin, "-f", str(rc), "--nosyslog", "-N", "-v", "--idfile", str(tmp_path / "ids")]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log
    assert "POP3> STLS" in log and "upgrade to TLS succeeded" in log
    files = sorted(out.iterdir())
    delivered = [lf_to_crlf(strip_header(f.read_bytes(), b"Received")) for f in files]
    assert [sha256(d) for d in delivered] == [sha256(m) for m in stored.values()]
    assert store.count("alice") == 0  # fetchmail's default: fetched mail is deleted


def test_mpop_stls_against_dialsim_pop3(mailhost_process, mpop_bin, tmp_path):
    pop3, _smtp, store = mailhost_process
    stored = store.peek("alice")
    box = tmp_path / "Mail"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    rc = tmp_path / "mpoprc"
    rc.write_text(
        f"account alice\nhost localhost\nport {pop3[1]}\nuser alice\npassword secret\n"
        f"tls on\ntls_starttls on\ntls_trust_file {trust_file(store)}\n"
        f"delivery maildir {box}\nkeep on\nuidls_file {tmp_path / 'uidls'}\n"
    )
    rc.chmod(0o600)
    argv = [mpop_bin, "-C", str(rc), "--debug", "alice"]
    run = {"capture_output": True, "timeout": 60, "env": {"HOME": str(tmp_path)}}
    res = subprocess.run(argv, **run)
    log = (res.stdout + res.stderr).decode(errors="replace")  # --debug shows the 8-bit mail
    assert res.returncode == 0, log
    assert "--> STLS" in log and "TLS session parameters" in log
    # mpop prepends its own Received: header and stores LF line ends
    delivered = [lf_to_crlf(strip_header(f.read_bytes(), b"Received")) for f in (box / "new").iterdir()]
    assert sorted(map(sha256, delivered)) == sorted(map(sha256, stored.values()))
    again = subprocess.run(argv, **run)
    assert again.returncode == 0 and len(list((box / "new").iterdir())) == 3  # UIDLs kept
    assert store.count("alice") == 3  # keep on


def test_msmtp_starttls_against_dialsim_smtp(mailhost_process, msmtp_bin, tmp_path):
    _pop3, smtp, store = mailhost_process
    rc = tmp_path / "msmtprc"
    rc.write_text(
        f"account default\nhost localhost\nport {smtp[1]}\nfrom carol@far.example\n"
        f"tls on\ntls_starttls on\ntls_trust_file {trust_file(store)}\nauth off\n"
    )
    rc.chmod(0o600)
    # msmtp adds Message-ID and Date when missing: these messages have their own
    sent = [
        b"Message-ID: <m%d@far.example>\r\nDate: Mon, 30 Nov 1998 17:00:00 +0000\r\n" % i + m
        for i, m in enumerate(MESSAGES)
    ]
    for m in sent:
        res = subprocess.run(
            [msmtp_bin, "-C", str(rc), "--debug", "bob@isp.example"], input=m,
            capture_output=True, timeout=60, env={"HOME": str(tmp_path)},
        )  # fmt: skip
        log = (res.stdout + res.stderr).decode(errors="replace")
        assert res.returncode == 0, log
        assert "--> STARTTLS" in log and "TLS session parameters" in log
    got = list(store.peek("bob").values())
    assert sorted(map(sha256, got)) == sorted(map(sha256, sent))  # byte for byte


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

