"""Durable Maildir delivery and the relay queue (the SMTP server's DeliverMessage effect)."""

import hashlib
import mailbox
import os

import pytest

from dialsim.hosts.mailhost import MailStore, answer
from dialsim.mail import delivery as delivery_mod
from dialsim.mail.delivery import OUTBOUND, MaildirDelivery, read_queued
from dialsim.proto.smtp import DeliverMessage, MailSent, SmtpClient, SmtpServer

from .mailserve import Served, drain

MSG = b"From: alice@isp.example\r\nTo: bob@isp.example\r\nSubject: hi\r\n\r\nbody\r\n.\r\n"


def make(tmp_path, users=("alice", "bob"), **kw):
    return MaildirDelivery(tmp_path, {"isp.example"}, set(users), hostname="mail", **kw)


def files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_local_delivery_lands_in_new_with_identical_bytes(tmp_path):
    d = make(tmp_path)
    d.deliver("alice@isp.example", ["bob@isp.example"], MSG)
    new = tmp_path / "bob" / "new"
    (only,) = new.iterdir()
    assert only.read_bytes() == MSG
    assert files(tmp_path / "bob" / "tmp") == [] and files(tmp_path / "bob" / "cur") == []
    assert d.delivered == 1
    # The stdlib Maildir reader (what a POP3 maildrop may use) sees the message.
    box = mailbox.Maildir(tmp_path / "bob", factory=None, create=False)
    assert [m.as_bytes().replace(b"\n", b"\r\n") for m in box] == [MSG]


def test_several_recipients_one_copy_each_and_duplicates_once(tmp_path):
    d = make(tmp_path)
    d.deliver("", ["bob@isp.example", "Alice@ISP.example", "BOB@isp.example"], MSG)
    assert len(files(tmp_path / "bob" / "new")) == 1
    assert len(files(tmp_path / "alice" / "new")) == 1
    d.deliver("", ["bob@isp.example"], MSG)
    names = files(tmp_path / "bob" / "new")
    assert len(names) == 2 and names[0] != names[1]


def test_recipient_policy(tmp_path):
    d = make(tmp_path)
    assert d.recipient_ok("bob@isp.example", from_subscriber=False)[0] == 250
    assert d.recipient_ok("Bob@ISP.Example", from_subscriber=False)[0] == 250
    assert d.recipient_ok("carol@isp.example", from_subscriber=True) == (
        550,
        "5.1.1 No such user here",
    )
    assert d.recipient_ok("x@far.example", from_subscriber=True)[0] == 250
    assert d.recipient_ok("x@far.example", from_subscriber=False) == (
        554,
        "5.7.1 Relay access denied",
    )


@pytest.mark.parametrize(
    "local", ["..", ".", ".outbound", "a/b", "../bob", "b\\c", "bob\x00", "", "bób"]
)
def test_no_path_traversal(tmp_path, local):
    # Even if a name like ".." were in the user list, it never names a folder.
    d = make(tmp_path, users=("bob", local))
    code, text = d.recipient_ok(f"{local}@isp.example", from_subscriber=True)
    assert code == 550 and text.startswith("5.1.3")
    with pytest.raises(ValueError):
        d.deliver("", [f"{local}@isp.example"], MSG)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_callable_users_and_postmaster(tmp_path):
    d = MaildirDelivery(tmp_path, ["isp.example"], lambda u: u.startswith("sub"), postmaster="sub0")
    assert d.recipient_ok("sub42@isp.example", from_subscriber=False)[0] == 250
    assert d.recipient_ok("other@isp.example", from_subscriber=False)[0] == 550
    assert d.recipient_ok("postmaster@isp.example", from_subscriber=False)[0] == 250
    d.deliver("", ["Postmaster@isp.example"], MSG)
    assert len(files(tmp_path / "sub0" / "new")) == 1


def test_remote_recipients_go_to_durable_relay_queue(tmp_path):
    d = make(tmp_path)
    d.deliver("alice@isp.example", ["bob@isp.example", "x@far.example", "y@other.example"], MSG)
    (queued,) = (tmp_path / OUTBOUND / "new").iterdir()
    assert read_queued(queued) == ("alice@isp.example", ["x@far.example", "y@other.example"], MSG)
    assert files(tmp_path / OUTBOUND / "tmp") == []
    assert (tmp_path / "bob" / "new").is_dir() and d.delivered == 2


def test_fsync_discipline(tmp_path, monkeypatch):
    """File fsync'd before the rename; new/ fsync'd after it."""
    log = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(a, b):
        log.append(("rename", str(b)))
        real_rename(a, b)

    make(tmp_path).deliver("", ["bob@isp.example"], MSG)  # create the folders first
    log.clear()
    monkeypatch.setattr(delivery_mod.os, "fsync", fsync)
    monkeypatch.setattr(delivery_mod.os, "rename", rename)
    make(tmp_path).deliver("", ["bob@isp.example"], MSG)
    kinds = [k for k, _ in log]
    assert kinds == ["fsync", "rename", "fsync"]
    assert os.path.dirname(log[0][1]) == str(tmp_path / "bob" / "tmp")  # the file, in tmp/
    assert os.path.basename(log[0][1]) == os.path.basename(log[1][1])
    assert log[2][1] == str(tmp_path / "bob" / "new")


def test_250_only_after_the_message_is_durable(tmp_path, monkeypatch):
    """The durable store's order, seen from the server's output: the file is
    fsync'd in tmp/, renamed into new/, new/ is fsync'd -- and only then does
    the server say 250."""
    d = make(tmp_path)
    d.deliver("", ["bob@isp.example"], MSG)  # create the folders first
    log = []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(delivery_mod.os, "fsync", lambda fd: (log.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(delivery_mod.os, "rename", lambda a, b: (log.append("rename"), real_rename(a, b)))
    srv = SmtpServer(d, now=0.0)
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\n", 1.0)
    srv.receive(MSG.replace(b"\r\n.\r\n", b"\r\n..\r\n") + b".\r\n", 1.0)
    log.append(b"250 2.0.0" in drain(srv))
    (effect,) = [e for e in srv.events() if isinstance(e, DeliverMessage)]
    answer(srv, effect, MailStore(delivery=d).carry_out, 2.0)
    log.append(b"250 2.0.0" in drain(srv))
    assert log == [False, "fsync", "rename", "fsync", True]
    assert len(files(tmp_path / "bob" / "new")) == 2


def test_scratch_delivery_never_fsyncs(tmp_path, monkeypatch):
    """A simulation's scratch folders: same layout and rename, no fsync."""
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    d = make(tmp_path, durable=False)
    d.deliver("", ["bob@isp.example", "x@far.example"], MSG)
    assert calls == []
    assert len(files(tmp_path / "bob" / "new")) == 1 and files(tmp_path / "bob" / "tmp") == []
    assert len(files(tmp_path / OUTBOUND / "new")) == 1


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    d = make(tmp_path)
    d.deliver("", ["alice@isp.example", "bob@isp.example"], MSG)
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(delivery_mod.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        d.deliver("", ["alice@isp.example", "bob@isp.example"], MSG)
    for user in ("alice", "bob"):
        assert len(files(tmp_path / user / "new")) == 1  # only the first delivery
        assert files(tmp_path / user / "tmp") == []


def test_smtp_server_answers_451_when_the_disk_fails(tmp_path, monkeypatch):
    d = make(tmp_path)
    srv = Served(SmtpServer(d, now=0.0), delivery=d)
    monkeypatch.setattr(delivery_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5)))
    srv.receive(b"HELO a\r\nMAIL FROM:<>\r\nRCPT TO:<bob@isp.example>\r\nDATA\r\nx\r\n.\r\n", 1.0)
    assert drain(srv).endswith(b"451 4.3.0 Local error in processing (OSError)\r\n")
    assert files(tmp_path / "bob" / "new") == []


def test_client_server_maildir_three_messages_equal_sha256(tmp_path):
    d = make(tmp_path)
    srv = Served(SmtpServer(d, now=0.0, subscriber_client=True), delivery=d)
    c = SmtpClient(helo_name="pc.isp.example", now=0.0)
    msgs = [
        MSG,
        b"Subject: 8bit\r\n\r\n\xe9\xe8\r\n..\r\n" * 40,
        b"".join(b"line %05d\r\n" % i for i in range(3000)),
    ]
    for m in msgs:
        c.send_mail("alice@isp.example", ["bob@isp.example", "x@far.example"], m, 0.0)
    c.quit(0.0)
    t = 0.0
    for _ in range(100):
        t += 0.1
        a = drain(srv)
        if a:
            c.receive(a, t)
        b = drain(c)
        if b:
            srv.receive(b, t)
        if not a and not b:
            break
    assert [e for e in c.events() if isinstance(e, MailSent)] == [
        MailSent(i, True, 250, 2) for i in range(3)
    ]
    want = sorted(hashlib.sha256(m).hexdigest() for m in msgs)
    got = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "bob" / "new").iterdir())
    assert got == want
    queued = sorted(
        hashlib.sha256(read_queued(p)[2]).hexdigest() for p in (tmp_path / OUTBOUND / "new").iterdir()
    )
    assert queued == want
