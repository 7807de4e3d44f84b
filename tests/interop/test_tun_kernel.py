"""dialsim's user-space IPv4/TCP (RFC 791, RFC 9293) against the Linux kernel's, through TUN.

A TUN device in a private network namespace (fixture ``tun_netns``) carries raw
IPv4 datagrams between the kernel (10.99.0.1) and dialsim's :class:`NetStack`
(10.99.0.2), driven on the wall clock by :class:`DirectLine` with
:class:`dialsim.drivers.tun.TunFraming` as the "framing":

- the kernel as client: Python's ``poplib`` in the namespace fetches from
  dialsim's POP3 server (RFC 1939) over a real Maildir: every message, one of
  them ~300 KiB, arrives byte for byte (SHA-256), UIDL is stable across
  sessions, DELE + QUIT removes the message from the Maildir;
- the kernel as server: a socket server in the namespace sends 300 KiB of random
  bytes and reads 300 KiB back; dialsim's TCP receives them intact, sends its
  own back and closes; both SHA-256s match on both sides.

Every loop has a timeout; on failure the stack's, the connection's and the
framing's counters and the peer's stderr are printed.
"""

from __future__ import annotations

import hashlib
import json
import random
import select
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from dialsim.drivers.direct import DirectLine
from dialsim.drivers.tun import TunFraming
from dialsim.hosts.endpoint import AppBinding, FrameLog, IpEndpoint
from dialsim.hosts.mailhost import MailStore
from dialsim.mail.accounts import Accounts
from dialsim.mail.maildrop import MaildirStore
from dialsim.mail.synth import random_message, synthesize_messages
from dialsim.proto.events import CloseRequested, FrameReceived, FrameSent, IpPacketReceived
from dialsim.proto.netstack import NetStack
from dialsim.proto.pop3 import Pop3Server
from dialsim.proto.tcp import CLOSED, TIME_WAIT

pytestmark = pytest.mark.interop

USER = "subscriber"
PASSWORD = "dialup-pw"
BIG = 300 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------
# unit checks of TunFraming (no device needed)


def _ipv4(payload_len: int = 0) -> bytes:
    total = 20 + payload_len
    return bytes([0x45, 0, total >> 8, total & 0xFF]) + bytes(16) + b"x" * payload_len


def test_tun_framing_one_datagram_per_chunk_and_events():
    f = TunFraming()
    a, b = _ipv4(3), _ipv4(5)
    f.send_ip(a, 0.0)
    f.send_ip(b, 0.0)
    assert f.queued == 2
    assert f.output(0.0) == [a, b]  # never merged
    assert f.output(0.0) == []
    evs = f.events()
    assert all(isinstance(e, FrameSent) for e in evs)
    assert [(e.packet, e.frame, e.capture, e.wire_octets, e.kind, e.protocol) for e in evs] == [
        (a, a, a, len(a), "ip", 0x21),
        (b, b, b, len(b), "ip", 0x21),
    ]
    assert f.events() == []
    assert f.next_deadline() is None


def test_tun_framing_receive_passes_ipv4_and_drops_housekeeping():
    f = TunFraming()
    ipv6_rs = bytes([0x60]) + bytes(39) + b"\x85\x00"  # router solicitation-ish
    f.receive(ipv6_rs, 0.0)
    f.receive(b"", 0.0)
    f.receive(b"\x45\x00", 0.0)  # truncated
    pkt = _ipv4(10)
    f.receive(pkt, 1.0)
    evs = f.events()
    assert isinstance(evs[0], FrameReceived) and isinstance(evs[1], IpPacketReceived) and len(evs) == 2
    assert evs[0].frame == pkt and evs[0].wire_octets == len(pkt) and evs[0].kind == "ip"
    assert evs[1].packet == pkt
    assert f.counters.non_ipv4_dropped == 3
    assert f.counters.frames_received == 1


def test_endpoint_output_gives_each_datagram_its_own_chunk():
    """Several segments queued at once (a window's worth) leave as separate chunks."""
    rng = random.Random(3)
    a = IpEndpoint(TunFraming(), NetStack("10.0.0.1", rng=rng))
    b = IpEndpoint(TunFraming(), NetStack("10.0.0.2", rng=rng))
    got = bytearray()

    class Sink:
        def receive(self, data, now):
            got.extend(data)

        def output(self, now):
            return []

        def events(self):
            return []

    b.listen(7, lambda conn, now: AppBinding(conn, Sink()))
    payload = bytes(range(256)) * 40
    sent = []

    class Source(Sink):
        def __init__(self):
            self.out = payload

        def output(self, now):
            out, self.out = self.out, b""
            return [out] if out else []

    a.connect("10.0.0.2", 7, 0.0, lambda conn, now: AppBinding(conn, Source()))
    t = 0.0
    for _ in range(200):
        t += 0.01
        for ep, other in ((a, b), (b, a)):
            chunks = ep.output(t)
            sent.extend(chunks)
            for c in chunks:
                other.receive(c, t)
        if len(got) == len(payload):
            break
    assert bytes(got) == payload
    # every chunk is exactly one IPv4 datagram (total length == chunk length)
    assert sent and all(int.from_bytes(c[2:4], "big") == len(c) for c in sent)
    assert max(len(c) for c in sent) <= 1500


# --------------------------------------------------------------------------------------
# helpers for the kernel tests


def _endpoint(tun, seed: int, mtu: int | None = None) -> tuple[IpEndpoint, NetStack, TunFraming]:
    mtu = mtu or tun.mtu
    stack = NetStack(tun.peer_addr, mtu=mtu, rng=random.Random(seed))
    framing = TunFraming(mtu=mtu)
    endpoint = IpEndpoint(framing, stack, capture=FrameLog(packets_only=True))
    return endpoint, stack, framing


def _kernel_snmp(tun) -> dict[str, int]:
    """The namespace's /proc/net/snmp and netstat counters, as "Tcp.InErrs" -> n."""
    res = tun.run(["cat", "/proc/net/snmp", "/proc/net/netstat"], capture_output=True, text=True)
    lines = res.stdout.splitlines()
    out: dict[str, int] = {}
    for head, vals in zip(lines[::2], lines[1::2], strict=False):
        proto, *names = head.split()
        _, *nums = vals.split()
        for n, v in zip(names, nums, strict=False):
            out[proto.rstrip(":") + "." + n] = int(v)
    return out


# Kernel counters that count datagrams/segments it refused from dialsim.
KERNEL_ERRORS = ("Ip.InHdrErrors", "Ip.InAddrErrors", "Tcp.InErrs", "Tcp.InCsumErrors")


def _check_capture(capture: FrameLog, mtu: int) -> dict[str, int]:
    """Cross-check every datagram dialsim sent with scapy (an independent IPv4/TCP
    implementation): checksums right, no datagram over ``mtu``, no TCP payload
    over the MSS the kernel announced; and our SYN / SYN-ACK carried MSS = mtu-40.
    Returns a few numbers for the report."""
    from scapy.layers.inet import IP, TCP

    kernel_mss = None
    our_mss = None
    sent = 0
    for _t, outbound, pkt, _kind in capture.frames:
        p = IP(pkt)
        assert TCP in p, p.summary()
        if p[TCP].flags.S:
            mss = dict(o for o in p[TCP].options if isinstance(o, tuple)).get("MSS")
            if outbound:
                our_mss = mss
            else:
                kernel_mss = mss
        if not outbound:
            continue
        sent += 1
        assert len(pkt) <= mtu and p.len == len(pkt)
        fresh = IP(pkt)
        del fresh.chksum
        del fresh[TCP].chksum
        again = IP(bytes(fresh))
        assert again.chksum == p.chksum, f"bad IP checksum: {p.summary()}"
        assert again[TCP].chksum == p[TCP].chksum, f"bad TCP checksum: {p.summary()}"
    assert our_mss == mtu - 40
    assert kernel_mss is not None
    max_payload = max(
        (len(IP(pkt)[TCP].payload) for _t, out, pkt, _k in capture.frames if out), default=0
    )
    assert max_payload <= kernel_mss
    return {"datagrams_sent": sent, "kernel_mss": kernel_mss, "max_payload": max_payload}


def _diagnostics(stack, framing, driver, conns, proc=None, extra="") -> str:
    lines = [
        f"elapsed on driver clock: {driver.now():.2f} s",
        f"driver octets in/out: {driver.octets_in}/{driver.octets_out}",
        f"framing: {framing.counters}",
        f"stack counters: { {k: v for k, v in stack.counters.items() if v} }",
    ]
    for c in conns:
        lines.append(
            f"{c!r}: snd_una={c.snd_una} snd_nxt={c.snd_nxt} rcv_nxt={c.rcv_nxt} "
            f"cwnd={c.congestion.cwnd} rto={c.rtt.rto} counters={ {k: v for k, v in c.counters.items() if v} }"
        )
    if proc is not None:
        lines.append(f"peer returncode: {proc.poll()}")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def _finish(proc: subprocess.Popen, timeout: float = 5.0) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=5)


# --------------------------------------------------------------------------------------
# kernel client (poplib) -> dialsim POP3 server


POPLIB_CLIENT = textwrap.dedent(
    """
    import hashlib, json, poplib, sys
    host, user, password = sys.argv[1], sys.argv[2], sys.argv[3]

    def session():
        p = poplib.POP3(host, 110, timeout=15)
        p.user(user)
        p.pass_(password)
        return p

    out = {}
    # session 1: LIST, UIDL, RETR everything
    p = session()
    out["welcome"] = p.getwelcome().decode()
    _, listing, _ = p.list()
    sizes = {int(n): int(s) for n, s in (x.split() for x in listing)}
    _, uidl, _ = p.uidl()
    uids = {int(n): u.decode() for n, u in (x.split() for x in uidl)}
    msgs = {}
    for n in sorted(sizes):
        _, lines, octets = p.retr(n)
        body = b"\\r\\n".join(lines) + b"\\r\\n"
        msgs[uids[n]] = {"sha": hashlib.sha256(body).hexdigest(), "len": len(body),
                         "size": sizes[n]}
    p.quit()
    out["session1"] = {"uids": uids, "msgs": msgs}
    # session 2: UIDL again, then DELE 1 and QUIT (UPDATE state removes it)
    p = session()
    _, uidl, _ = p.uidl()
    out["session2_uids"] = {int(n): u.decode() for n, u in (x.split() for x in uidl)}
    p.dele(1)
    out["quit"] = p.quit().decode()
    # session 3: what is left
    p = session()
    _, uidl, _ = p.uidl()
    out["session3_uids"] = {int(n): u.decode() for n, u in (x.split() for x in uidl)}
    p.quit()
    print(json.dumps(out))
    """
)


def test_kernel_poplib_fetches_from_dialsim_pop3_server(tun_netns, tmp_path):
    tun = tun_netns
    store = MaildirStore(tmp_path / "mail")
    accounts = Accounts({USER: PASSWORD})
    rng = np.random.default_rng(1996)
    messages = synthesize_messages(
        rng, 4, median_size_octets=3000, to_addr=f"{USER}@isp.example",
        domain="isp.example", start_time=820454400.0,
    )  # fmt: skip
    messages.append(random_message(rng, BIG))
    for i, m in enumerate(messages):
        store.deliver(USER, m, name=f"{1000 + i}.M{i}P1.dialsim")
    stored = store.peek(USER)  # uidl -> CRLF bytes, in maildrop order
    assert len(stored) == 5 and max(len(m) for m in stored.values()) > 290 * 1024

    endpoint, stack, framing = _endpoint(tun, seed=110)
    snmp_before = _kernel_snmp(tun)
    servers: list[Pop3Server] = []

    def pop3_binding(conn, now):
        srv = Pop3Server(accounts, hostname="pop.isp.example", now=now)
        servers.append(srv)
        return AppBinding(conn, srv, carry_out=MailStore(store).carry_out)

    endpoint.listen(110, pop3_binding)
    driver = DirectLine(endpoint, tun.fd, packet_fd=True)
    seen_conns: list = []

    def track() -> bool:
        for c in stack.connections.values():
            if c not in seen_conns:
                seen_conns.append(c)
        return proc.poll() is not None

    proc = tun.popen(
        [sys.executable, "-c", POPLIB_CLIENT, tun.peer_addr, USER, PASSWORD],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # keep running a little after the client exits so the last FIN/ACKs are answered
    finished = driver.run_until(track, timeout=30.0)
    driver.run_until(lambda: False, timeout=0.3)
    out, err = _finish(proc)
    diag = _diagnostics(stack, framing, driver, seen_conns, proc, f"client stderr:\n{err}")
    assert finished, "poplib client did not finish in 30 s\n" + diag
    assert proc.returncode == 0, "poplib client failed\n" + diag
    res = json.loads(out)

    assert res["welcome"].startswith("+OK")
    s1 = res["session1"]
    # every stored message arrived intact; LIST sizes are the exact CRLF octet counts
    assert {u: m["sha"] for u, m in s1["msgs"].items()} == {u: sha(m) for u, m in stored.items()}
    assert all(m["len"] == m["size"] == len(stored[u]) for u, m in s1["msgs"].items())
    assert list(s1["uids"].values()) == list(stored)  # maildrop order
    # UIDL stable across sessions (JSON made the int keys strings)
    assert res["session2_uids"] == s1["uids"]
    # DELE + QUIT: gone from the maildrop and from the next session's UIDL
    first = s1["uids"]["1"]
    assert res["quit"].startswith("+OK")
    assert first not in res["session3_uids"].values()
    assert sorted(res["session3_uids"].values()) == sorted(u for u in stored if u != first)
    assert set(store.peek(USER)) == set(stored) - {first}
    assert len(servers) == 3
    # it really went through dialsim's stack: three accepted connections, the
    # big message's octets counted by the endpoint as application payload
    assert stack.counters["tcp_connections_accepted"] == 3, diag
    assert endpoint.sent.app > sum(len(m) for m in stored.values()), diag
    assert stack.counters["ip_bad_checksum"] == 0 and stack.counters["tcp_bad_segments"] == 0, diag
    _assert_kernel_took_everything(tun, snmp_before, diag)
    print(_check_capture(endpoint.capture, tun.mtu))
    print(diag)


def _assert_kernel_took_everything(tun, before: dict[str, int], diag: str) -> None:
    after = _kernel_snmp(tun)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    errors = {k: delta.get(k, 0) for k in KERNEL_ERRORS}
    assert not any(errors.values()), f"the kernel refused datagrams: {errors}\n{diag}"
    print("kernel:", {k: delta[k] for k in ("Tcp.InSegs", "Tcp.OutSegs", "Tcp.RetransSegs")})


# --------------------------------------------------------------------------------------
# dialsim client -> kernel socket server


KERNEL_SERVER = textwrap.dedent(
    """
    import hashlib, json, os, socket, sys
    import time
    addr, port, n, slow = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "slow"
    data = os.urandom(n)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if slow:  # a small receive buffer, and nobody reading for a while: zero window
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(20)
    print("READY", flush=True)
    conn, peer = s.accept()
    conn.settimeout(20)
    conn.sendall(data)
    if slow:
        time.sleep(2.5)
    got = bytearray()
    while len(got) < n:
        chunk = conn.recv(65536)
        if not chunk:
            break
        got += chunk
    # after n octets the client closes: we must then read EOF
    eof = conn.recv(1) == b""
    conn.close()
    print(json.dumps({"sent_sha": hashlib.sha256(data).hexdigest(),
                      "recv_sha": hashlib.sha256(bytes(got)).hexdigest(),
                      "recv_len": len(got), "eof": eof, "peer": list(peer)}), flush=True)
    """
)


class SinkThenSource:
    """A tiny sans-IO application: collects ``expect`` octets, then sends ``reply``
    and asks for the connection to be closed."""

    def __init__(self, expect: int, reply: bytes) -> None:
        self.expect = expect
        self.reply = reply
        self.received = bytearray()
        self._out = b""
        self._events: list = []
        self.replied = False
        self.lost = False

    def receive(self, data: bytes, now: float) -> None:
        self.received += data
        if not self.replied and len(self.received) >= self.expect:
            self.replied = True
            self._out = self.reply
            self._events.append(CloseRequested(now))

    def output(self, now: float) -> list[bytes]:
        out, self._out = self._out, b""
        return [out] if out else []

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def connection_lost(self, now: float) -> None:
        self.lost = True


def _wait_line(proc: subprocess.Popen, want: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    buf = ""
    while time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 0.1)
        if r:
            line = proc.stdout.readline()
            if not line:
                return False
            buf += line
            if want in line:
                return True
        elif proc.poll() is not None:
            return False
    return False


@pytest.mark.parametrize(
    ("mtu", "reader"), [(1500, "fast"), (576, "fast"), (1500, "slow")], ids=["1500", "576", "zero-window"]
)
def test_dialsim_client_exchanges_300k_with_kernel_server(tun_netns, mtu, reader):
    """300 KiB each way over a full-size link and over the dial-up era's 576-octet
    MTU (set on the kernel's device too, so both ends announce MSS 536); and against
    a kernel receiver with a tiny buffer that stops reading for 2.5 s, so dialsim
    must sit out a zero window (persist timer, RFC 9293 3.8.6.1) and resume."""
    tun = tun_netns
    port = 5300
    if mtu != tun.mtu:
        tun.run(["ip", "link", "set", tun.ifname, "mtu", str(mtu)], check=True)
    proc = tun.popen(
        [sys.executable, "-c", KERNEL_SERVER, tun.kernel_addr, str(port), str(BIG), reader],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert _wait_line(proc, "READY", 15.0), f"kernel server did not start: {_finish(proc)}"

    endpoint, stack, framing = _endpoint(tun, seed=5300, mtu=mtu)
    snmp_before = _kernel_snmp(tun)
    reply = random.Random(42).randbytes(BIG)
    app = SinkThenSource(BIG, reply)
    binding = endpoint.connect(tun.kernel_addr, port, 0.0, lambda conn, now: AppBinding(conn, app))
    driver = DirectLine(endpoint, tun.fd, packet_fd=True)

    def done() -> bool:
        return proc.poll() is not None and binding.conn.state in (CLOSED, TIME_WAIT)

    finished = driver.run_until(done, timeout=30.0)
    out, err = _finish(proc)
    diag = _diagnostics(stack, framing, driver, [binding.conn], proc, f"server stderr:\n{err}")
    assert finished, "exchange did not finish in 30 s\n" + diag
    assert proc.returncode == 0, diag
    res = json.loads(out.strip().splitlines()[-1])

    assert len(app.received) == BIG, diag
    assert sha(bytes(app.received)) == res["sent_sha"], diag
    assert res["recv_len"] == BIG and res["recv_sha"] == sha(reply), diag
    assert res["eof"] is True, diag
    assert res["peer"][0] == tun.peer_addr
    assert stack.counters["ip_bad_checksum"] == 0 and stack.counters["tcp_bad_segments"] == 0, diag
    _assert_kernel_took_everything(tun, snmp_before, diag)
    checked = _check_capture(endpoint.capture, mtu)
    assert checked["kernel_mss"] == mtu - 40
    if reader == "slow":
        from scapy.layers.inet import IP, TCP

        zero = [
            pkt for _t, out, pkt, _k in endpoint.capture.frames
            if not out and IP(pkt)[TCP].window == 0 and not IP(pkt)[TCP].flags.R
        ]  # fmt: skip
        assert zero, "the kernel never closed its window: the test did not test\n" + diag
        checked["zero_window_segments"] = len(zero)
    print(checked)
    print(diag)


class LossyTunFraming(TunFraming):
    """TunFraming that loses a seeded fraction of the datagrams dialsim sends."""

    def __init__(self, *, loss: float, seed: int, **kw) -> None:
        super().__init__(**kw)
        self.loss = loss
        self.rng = random.Random(seed)
        self.dropped = 0

    def output(self, now: float) -> list[bytes]:
        kept = []
        for pkt in super().output(now):
            if self.rng.random() < self.loss:
                self.dropped += 1
            else:
                kept.append(pkt)
        return kept


def test_exchange_with_kernel_survives_loss_both_ways(tun_netns):
    """3 % of datagrams lost in each direction (seeded): dialsim's retransmissions
    (RTO, fast retransmit) and its reassembly of the kernel's retransmissions still
    deliver 300 KiB each way intact."""
    tun = tun_netns
    port = 5301
    proc = tun.popen(
        [sys.executable, "-c", KERNEL_SERVER, tun.kernel_addr, str(port), str(BIG), "fast"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert _wait_line(proc, "READY", 15.0), f"kernel server did not start: {_finish(proc)}"
    stack = NetStack(tun.peer_addr, mtu=tun.mtu, rng=random.Random(5301))
    framing = LossyTunFraming(loss=0.03, seed=11, mtu=tun.mtu)
    endpoint = IpEndpoint(framing, stack)
    reply = random.Random(43).randbytes(BIG)
    app = SinkThenSource(BIG, reply)
    binding = endpoint.connect(tun.kernel_addr, port, 0.0, lambda conn, now: AppBinding(conn, app))
    driver = DirectLine(endpoint, tun.fd, packet_fd=True)
    in_rng = random.Random(12)
    dropped_in = [0]

    def inbound(datagram: bytes) -> bool:
        if in_rng.random() < 0.03:
            dropped_in[0] += 1
            return False
        return True

    driver.chunk_filter = inbound
    snmp_before = _kernel_snmp(tun)

    def done() -> bool:
        return proc.poll() is not None and binding.conn.state in (CLOSED, TIME_WAIT)

    finished = driver.run_until(done, timeout=45.0)
    out, err = _finish(proc)
    diag = _diagnostics(
        stack, framing, driver, [binding.conn], proc,
        f"dropped out/in: {framing.dropped}/{dropped_in[0]}\nserver stderr:\n{err}",
    )  # fmt: skip
    assert finished, "exchange did not finish in 45 s\n" + diag
    assert proc.returncode == 0, diag
    res = json.loads(out.strip().splitlines()[-1])
    assert sha(bytes(app.received)) == res["sent_sha"], diag
    assert res["recv_len"] == BIG and res["recv_sha"] == sha(reply), diag
    assert framing.dropped > 0 and dropped_in[0] > 0, "no loss happened: the test did not test"
    assert binding.conn.counters["segments_retransmitted"] > 0, diag
    _assert_kernel_took_everything(tun, snmp_before, diag)
    print(diag)


# --------------------------------------------------------------------------------------
# resets, ICMP echo, and a proof that the kernel-side error check can fail


def test_kernel_and_dialsim_refuse_closed_ports_with_rst(tun_netns):
    """RFC 9293 3.10.7.1 both ways: the kernel's connect() to a port dialsim does
    not listen on is refused by dialsim's RST; dialsim's connect() to a closed
    kernel port ends in ConnectionReset from the kernel's RST."""
    tun = tun_netns
    endpoint, stack, framing = _endpoint(tun, seed=7)
    driver = DirectLine(endpoint, tun.fd, packet_fd=True)
    client = tun.popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import socket, sys
            try:
                socket.create_connection((sys.argv[1], 4242), timeout=10)
                print("connected")
            except ConnectionRefusedError:
                print("refused")
            """), tun.peer_addr],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert driver.run_until(lambda: client.poll() is not None, timeout=15.0)
    out, err = _finish(client)
    diag = _diagnostics(stack, framing, driver, [], client, err)
    assert out.strip() == "refused", diag
    assert stack.counters["tcp_closed_port"] >= 1 and stack.counters["tcp_rst_sent"] >= 1, diag

    names: list[str] = []

    class Idle:
        def receive(self, data, now): ...
        def output(self, now): return []  # noqa: E704
        def events(self): return []  # noqa: E704

    binding = endpoint.connect(
        tun.kernel_addr, 4343, driver.now(),
        lambda conn, now: AppBinding(conn, Idle(), lambda ev, now: names.append(type(ev).__name__)),
    )  # fmt: skip
    assert driver.run_until(lambda: binding.closed, timeout=10.0), _diagnostics(
        stack, framing, driver, [binding.conn]
    )
    assert "ConnectionReset" in names and binding.conn.state == CLOSED
    assert binding.conn.counters["rst_received"] == 1


KERNEL_PINGER = textwrap.dedent(
    """
    import json, socket, sys
    # an ICMP "ping socket" (what ping(8) uses unprivileged): the kernel checks the
    # reply's ICMP checksum (icmp_rcv) and matches its identifier before we see it
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(3)
    got = []
    for seq in range(1, 4):
        payload = bytes(range(256)) * 4 + seq.to_bytes(2, "big")
        s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, seq]) + payload, (sys.argv[1], 0))
        reply, _ = s.recvfrom(4096)
        got.append({"type": reply[0], "seq": int.from_bytes(reply[6:8], "big"),
                    "payload_ok": reply[8:] == payload})
    print(json.dumps(got))
    """
)


def test_kernel_ping_socket_gets_dialsim_echo_replies(tun_netns):
    """RFC 792 echo through the kernel's ICMP checks: dialsim's replies carry the
    request's sequence number and data and a checksum the kernel accepts."""
    tun = tun_netns
    tun.run(["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"], check=True)
    endpoint, stack, framing = _endpoint(tun, seed=8)
    driver = DirectLine(endpoint, tun.fd, packet_fd=True)
    snmp_before = _kernel_snmp(tun)
    pinger = tun.popen(
        [sys.executable, "-c", KERNEL_PINGER, tun.peer_addr],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert driver.run_until(lambda: pinger.poll() is not None, timeout=15.0)
    out, err = _finish(pinger)
    diag = _diagnostics(stack, framing, driver, [], pinger, err)
    assert pinger.returncode == 0, diag
    assert json.loads(out) == [{"type": 0, "seq": n, "payload_ok": True} for n in (1, 2, 3)]
    assert stack.counters["icmp_echo_replies_sent"] == 3
    after = _kernel_snmp(tun)
    assert after["Icmp.InCsumErrors"] == snmp_before["Icmp.InCsumErrors"]
    assert after["Icmp.InEchoReps"] - snmp_before["Icmp.InEchoReps"] == 3


def test_kernel_error_counters_do_see_a_bad_checksum(tun_netns):
    """The harness's kernel-side check is not vacuous: one segment with a wrong TCP
    checksum written to the device shows up in Tcp.InCsumErrors."""
    from scapy.layers.inet import IP, TCP

    tun = tun_netns
    listener = tun.listen_tcp()
    try:
        before = _kernel_snmp(tun)
        seg = IP(src=tun.peer_addr, dst=tun.kernel_addr) / TCP(
            sport=40000, dport=listener.getsockname()[1], flags="S", seq=1, chksum=0x1234
        )
        tun.write(bytes(seg))
        end = time.monotonic() + 5
        delta = 0
        while time.monotonic() < end and not delta:
            delta = _kernel_snmp(tun)["Tcp.InCsumErrors"] - before["Tcp.InCsumErrors"]
            time.sleep(0.05)
        assert delta == 1
    finally:
        listener.close()
