"""Smoke tests for the interop fixtures: each real peer is exercised WITHOUT dialsim
code, with hand-built packets (scapy) and the test-side framers in peers.py:
slirp over SLIP (RFC 1055) and PPP/LCP (RFC 1661, RFC 1662 async HDLC), Dovecot POP3
(RFC 1939) with poplib, the Linux kernel TCP (RFC 9293) behind TUN, and the SMTP /
POP3 client programs.  Plus golden vectors for the test-side framers themselves.
"""

from __future__ import annotations

import errno
import hashlib
import poplib
import random
import smtplib
import socket
import subprocess
import threading

import pytest

from . import peers

pytestmark = pytest.mark.interop


# --------------------------------------------------------------------------------------
# test-side framers (no peer needed)


def test_fcs16_check_value_and_good_fcs():
    # RFC 1662 FCS-16: complemented check value of "123456789" is 0x906E
    assert peers.fcs16(b"123456789") ^ 0xFFFF == 0x906E
    framed = b"\xff\x03\xc0\x21\x01\x01\x00\x04" + peers.ppp_fcs16(
        b"\xff\x03\xc0\x21\x01\x01\x00\x04"
    )
    assert peers.fcs16(framed) == peers.PPP_GOOD_FCS16


def test_hdlc_encode_escapes_and_round_trips_bytewise():
    frame = b"\xff\x03\xc0\x21" + bytes(range(0, 40)) + b"\x7e\x7d\x7e"
    wire = peers.hdlc_encode(frame)
    body = wire[1:-1]
    assert b"\x7e" not in body
    assert not any(b < 0x20 for b in body)
    dec = peers.HdlcDecoder()
    out = [f for b in (wire + b"\x7e\x01\x02\x03\x04\x05\x7e") for f in dec.feed(bytes([b]))]
    assert out == [frame]
    assert dec.bad_fcs == 1  # the trailing garbage frame
    assert peers.HdlcDecoder().feed(wire) == [frame]


def test_slip_encode_rfc1055_escapes_and_round_trips():
    assert peers.slip_encode(b"\x01\xc0\x02\xdb") == b"\xc0\x01\xdb\xdc\x02\xdb\xdd\xc0"
    dec = peers.SlipDecoder()
    pkt = bytes(range(256))
    wire = peers.slip_encode(pkt) + peers.slip_encode(b"x")[:-1]  # trailing partial
    assert [f for b in wire for f in dec.feed(bytes([b]))] == [pkt]
    assert dec.feed(b"\xc0") == [b"x"]


def test_require_fails_under_ci_and_skips_otherwise(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool"):
        peers.require("no-such-tool-dialsim", "missing")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        peers.require(False, "not here")
    assert peers.require("sh").endswith("/sh")
    assert peers.require(42, "x") == 42


# --------------------------------------------------------------------------------------
# slirp


@pytest.fixture
def host_listener():
    """A kernel TCP listener on the host's 127.0.0.1 (what slirp's 10.0.2.2 reaches)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    try:
        yield s
    finally:
        s.close()


def test_slirp_slip_syn_gets_syn_ack(slirp_pty, host_listener):
    from scapy.layers.inet import IP, TCP

    line = slirp_pty("slip")
    port = host_listener.getsockname()[1]
    sport, seq = random.randint(20000, 60000), random.randint(0, 2**31)
    syn = IP(src=line.our_addr, dst=line.host_alias, id=1) / TCP(
        sport=sport, dport=port, flags="S", seq=seq, window=4096, options=[("MSS", 536)]
    )
    line.write(peers.slip_encode(bytes(syn)))

    def is_synack(frame: bytes) -> bool:
        p = IP(frame)
        return TCP in p and p[TCP].dport == sport and p[TCP].flags == "SA"

    frame, _ = line.read_until(peers.SlipDecoder(), is_synack, timeout=10)
    reply = IP(frame)
    assert reply.src == line.host_alias and reply.dst == line.our_addr
    assert reply[TCP].sport == port
    assert reply[TCP].ack == seq + 1
    # be polite: reset the half-open connection
    rst = IP(src=line.our_addr, dst=line.host_alias) / TCP(
        sport=sport, dport=port, flags="R", seq=seq + 1
    )
    line.write(peers.slip_encode(bytes(rst)))


def test_slirp_ppp_lcp_configure_request_gets_ack(slirp_pty):
    from scapy.layers.ppp import (
        PPP,
        PPP_LCP_ACCM_Option,
        PPP_LCP_Configure,
        PPP_LCP_Magic_Number_Option,
        PPP_LCP_MRU_Option,
    )

    line = slirp_pty("ppp")
    options = [
        PPP_LCP_MRU_Option(max_recv_unit=1500),
        PPP_LCP_ACCM_Option(accm=0),
        PPP_LCP_Magic_Number_Option(magic_number=0x12345678),
    ]
    req = bytes(PPP(proto=0xC021) / PPP_LCP_Configure(code=1, id=0x2A, options=options))
    # golden bytes: protocol, code/id/length, then MRU, ACCM, magic-number options
    assert req == bytes.fromhex("c021 01 2a 0014 010405dc 020600000000 050612345678")
    line.write(peers.hdlc_encode(b"\xff\x03" + req))

    def is_ack(frame: bytes) -> bool:
        # tolerate ACFC/PFC on slirp's side
        body = frame[2:] if frame[:2] == b"\xff\x03" else frame
        return body[:2] == b"\xc0\x21" and body[2:4] == b"\x02\x2a"

    frame, seen = line.read_until(peers.HdlcDecoder(), is_ack, timeout=10)
    ack = PPP(frame[2:])
    assert ack.proto == 0xC021
    assert ack[PPP_LCP_Configure].code == 2 and ack[PPP_LCP_Configure].id == 0x2A
    # the Ack carries our options back verbatim (RFC 1661 5.2)
    assert frame[2 + 2 + 4 :] == req[2 + 4 :]


# --------------------------------------------------------------------------------------
# Dovecot POP3


MESSAGE = (
    b"From: isp@example.net\n"
    b"To: subscriber@example.net\n"
    b"Subject: hello over 28.8k\n"
    b"Message-ID: <1@example.net>\n"
    b"\n"
    b"first line\n"
    b".a line that needs dot-stuffing\n"
    b"..and another\n"
    b"last line\n"
)


def test_dovecot_pop3_with_poplib(dovecot):
    second = MESSAGE.replace(b"<1@", b"<2@") + (b"x" * 70 + b"\n") * 50  # 50 more lines
    dovecot.deliver(MESSAGE)
    dovecot.deliver(second)
    expect = [m.replace(b"\n", b"\r\n") for m in (MESSAGE, second)]

    def session():
        p = poplib.POP3(dovecot.host, dovecot.port, timeout=10)
        try:
            assert p.getwelcome().startswith(b"+OK")
            p.user(dovecot.user)
            p.pass_(dovecot.password)
            _, listing, _ = p.list()
            sizes = {int(n): int(s) for n, s in (x.split() for x in listing)}
            _, uidl, _ = p.uidl()
            uids = {int(n): u for n, u in (x.split() for x in uidl)}
            bodies = {}
            for n in sorted(sizes):
                _, lines, _ = p.retr(n)
                bodies[n] = b"\r\n".join(lines) + b"\r\n"
            return sizes, uids, bodies
        finally:
            p.quit()

    sizes, uids, bodies = session()
    assert sorted(sizes) == [1, 2]
    # the server serves the stored message (LF -> CRLF) byte for byte
    got = sorted(hashlib.sha256(b).hexdigest() for b in bodies.values())
    assert got == sorted(hashlib.sha256(b).hexdigest() for b in expect)
    assert {sizes[n] for n in sizes} == {len(b) for b in expect}
    assert all(sizes[n] == len(bodies[n]) for n in sizes)
    assert len(set(uids.values())) == 2
    # UIDs are stable across sessions (RFC 1939 UIDL)
    assert session()[1] == uids


def test_dovecot_rejects_wrong_password(dovecot):
    p = poplib.POP3(dovecot.host, dovecot.port, timeout=10)
    try:
        p.user(dovecot.user)
        with pytest.raises(poplib.error_proto):
            p.pass_("wrong")
    finally:
        p.close()


def test_fetchmail_fetches_from_dovecot(dovecot, fetchmail_bin, tmp_path):
    dovecot.deliver(MESSAGE)
    out = tmp_path / "fetched"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"poll {dovecot.host} service {dovecot.port} protocol pop3 auth password\n"
        f"  user '{dovecot.user}' password '{dovecot.password}' is root here\n"
        f"  sslproto '' keep mda 'cat >> {out}'\n"
    )
    rc.chmod(0o600)
    res = subprocess.run(
        [fetchmail_bin, "-f", str(rc), "--nosyslog", "--silent", "-N", "--idfile", str(tmp_path / "ids")],
        capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    fetched = out.read_bytes()
    assert b"Subject: hello over 28.8k" in fetched
    assert b".a line that needs dot-stuffing" in fetched and b"..and another" in fetched


def test_getmail_fetches_from_dovecot(dovecot, getmail_bin, tmp_path):
    import os

    dovecot.deliver(MESSAGE)
    # getmail refuses to deliver as root: deliver as the non-root mail user into a
    # world-traversable scratch folder (pytest's tmp folders are 0700)
    uid, gid, name = peers.mail_owner()
    with peers.scratch_dir() as box:
        box.chmod(0o755)
        mbox = box / "inbox.mbox"
        mbox.touch()
        os.chown(mbox, uid, gid)
        (tmp_path / "getmailrc").write_text(
            "[retriever]\ntype = SimplePOP3Retriever\n"
            f"server = {dovecot.host}\nport = {dovecot.port}\n"
            f"username = {dovecot.user}\npassword = {dovecot.password}\n"
            f"[destination]\ntype = Mboxrd\npath = {mbox}\nuser = {name}\n"
            "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
        )
        res = subprocess.run(
            [getmail_bin, f"--getmaildir={tmp_path}", "--rcfile=getmailrc"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        fetched = mbox.read_bytes()
    assert b"Subject: hello over 28.8k" in fetched
    assert b"..and another" in fetched
    assert len(dovecot.messages()) == 1  # delete = false: left on the server


# --------------------------------------------------------------------------------------
# SMTP peers: aiosmtpd server, smtplib and swaks clients


@pytest.fixture
def smtp_sink(aiosmtpd_mod):
    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK queued"

    ctl = Controller(Handler(), hostname="127.0.0.1", port=peers.free_port())
    ctl.start()
    try:
        yield ctl, received
    finally:
        ctl.stop()


def test_swaks_and_smtplib_talk_to_aiosmtpd(smtp_sink, swaks_bin):
    ctl, received = smtp_sink
    with smtplib.SMTP(ctl.hostname, ctl.port, timeout=10) as s:
        s.sendmail("a@example.net", ["b@example.net"], b"Subject: one\r\n\r\nbody\r\n")
    res = subprocess.run(
        [swaks_bin, "--server", ctl.hostname, "--port", str(ctl.port), "--from", "c@example.net",
         "--to", "d@example.net", "--header", "Subject: two", "--body", "swaks body",
         "--timeout", "10"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert [e.rcpt_tos for e in received] == [["b@example.net"], ["d@example.net"]]
    assert b"swaks body" in received[1].original_content


def test_tshark_dissects_a_pcap(tshark_bin, tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import wrpcap

    pkt = IP(src="10.0.2.15", dst="10.0.2.2") / TCP(sport=1025, dport=110, flags="S")
    pcap = tmp_path / "one.pcap"
    wrpcap(str(pcap), [pkt], linktype=101)  # LINKTYPE_RAW (raw IP)
    res = subprocess.run(
        [tshark_bin, "-r", str(pcap), "-T", "fields", "-e", "ip.src", "-e", "tcp.dstport"],
        capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["10.0.2.15", "110"]


# --------------------------------------------------------------------------------------
# Linux kernel TCP/IP behind TUN


def test_tun_kernel_answers_syn_with_syn_ack(tun_netns):
    from scapy.layers.inet import IP, TCP

    listener = tun_netns.listen_tcp()
    port = listener.getsockname()[1]
    sport, seq = random.randint(20000, 60000), random.randint(0, 2**31)
    syn = IP(src=tun_netns.peer_addr, dst=tun_netns.kernel_addr) / TCP(
        sport=sport, dport=port, flags="S", seq=seq, window=8192
    )
    tun_netns.write(bytes(syn))

    def is_synack(pkt: bytes) -> bool:
        p = IP(pkt)
        return TCP in p and p[TCP].dport == sport and p[TCP].flags == "SA"

    reply = IP(tun_netns.read_until(is_synack, timeout=5))
    assert reply.src == tun_netns.kernel_addr and reply.dst == tun_netns.peer_addr
    assert reply[TCP].ack == seq + 1

    # complete the handshake; the kernel's accept() then sends a greeting as data
    greeting = b"+OK kernel here\r\n"

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.sendall(greeting)

    listener.settimeout(5)
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ack = IP(src=tun_netns.peer_addr, dst=tun_netns.kernel_addr) / TCP(
        sport=sport, dport=port, flags="A", seq=seq + 1, ack=reply[TCP].seq + 1, window=8192
    )
    tun_netns.write(bytes(ack))
    data = IP(tun_netns.read_until(lambda b: TCP in IP(b) and len(IP(b)[TCP].payload) > 0))
    assert bytes(data[TCP].payload) == greeting
    t.join(5)
    listener.close()


def test_tun_namespace_subprocess_and_call_run_inside(tun_netns):
    res = tun_netns.run(
        ["ip", "-brief", "addr", "show", "dev", tun_netns.ifname], capture_output=True, text=True
    )
    assert f"{tun_netns.kernel_addr}/{tun_netns.prefix}" in res.stdout
    # a thread in the namespace sees the namespace's interfaces, not the host's
    names = tun_netns.call(lambda: sorted(n for _, n in socket.if_nameindex()))
    assert names == sorted(["lo", tun_netns.ifname])


def test_tun_kernel_client_syn_reaches_the_tun_fd(tun_netns):
    """The kernel as TCP client (how e.g. poplib meets dialsim's POP3 server): a
    socket made by tun_netns.socket() lives in the namespace, so its connect to the
    peer address is routed out through the TUN device."""
    from scapy.layers.inet import IP, TCP

    s = tun_netns.socket()
    try:
        s.setblocking(False)
        assert s.connect_ex((tun_netns.peer_addr, 110)) in (errno.EINPROGRESS, errno.EAGAIN)
        syn = IP(tun_netns.read_until(lambda b: TCP in IP(b) and IP(b)[TCP].flags == "S"))
        assert syn.src == tun_netns.kernel_addr and syn.dst == tun_netns.peer_addr
        assert syn[TCP].dport == 110 and syn[TCP].sport == s.getsockname()[1]
    finally:
        s.close()


def test_tun_namespace_python_subprocess(tun_netns):
    code = "import socket; print(sorted(n for _, n in socket.if_nameindex()))"
    p = tun_netns.python(code, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    assert out.strip() == repr(sorted(["lo", tun_netns.ifname]))
