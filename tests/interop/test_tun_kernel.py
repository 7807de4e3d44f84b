"""dialsim's user-space IPv4/TCP (RFC 791, RFC 9293) against the Linux kernel's, through TUN.

A TUN device in a private network namespace (fixture ``tun_netns``) carries raw
IPv4 datagrams between the kernel (10.99.0.1) and dialsim's :class:`NetStack`
(10.99.0.2), driven on the wall clock by :class:`FdLineDriver` with
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

from dialsim.drivers.realtime import FdLineDriver
from dialsim.drivers.tun import TunFraming
from dialsim.hosts.endpoint import AppBinding, IpEndpoint
from dialsim.mail.accounts import Accounts
from dialsim.mail.maildrop import MaildirStore
from dialsim.mail.synth import random_message, synthesize_messages
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
    assert f.data_to_send() == a  # never merged
    assert f.data_to_send() == b
    assert f.data_to_send() == b""
    evs = f.events()
    assert [(type(e).__name__, e.packet, e.frame, e.wire_octets, e.kind) for e in evs] == [
        ("FrameSent", a, a, len(a), "ip"),
        ("FrameSent", b, b, len(b), "ip"),
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
    assert [type(e).__name__ for e in evs] == ["FrameReceived", "IpPacketReceived"]
    assert evs[0].frame == pkt and evs[0].wire_octets == len(pkt) and evs[0].kind == "ip"
    assert evs[1].packet == pkt
    assert f.counters.non_ipv4_dropped == 3
    assert f.counters.frames_received == 1


def test_endpoint_line_output_gives_each_datagram_its_own_chunk():
    """Several segments queued at once (a window's worth) leave as separate chunks."""
    rng = random.Random(3)
    a = IpEndpoint(TunFraming(), NetStack("10.0.0.1", rng=rng))
    b = IpEndpoint(TunFraming(), NetStack("10.0.0.2", rng=rng))
    got = bytearray()

    class Sink:
        def receive(self, data, now):
            got.extend(data)

        def data_to_send(self):
            return b""

        def events(self):
            return []

    b.listen(7, lambda conn, now: AppBinding(conn, Sink()))
    payload = bytes(range(256)) * 40
    sent = []

    class Source(Sink):
        def __init__(self):
            self.out = payload

        def data_to_send(self):
            out, self.out = self.out, b""
            return out

    a.connect("10.0.0.2", 7, 0.0, lambda conn, now: AppBinding(conn, Source()))
    t = 0.0
    for _ in range(200):
        t += 0.01
        for ep, other in ((a, b), (b, a)):
            chunks = ep.line_output(t)
            sent.extend(chunks)
            for c in chunks:
                other.receive_line(c, t)
        if len(got) == len(payload):
            break
    assert bytes(got) == payload
    # every chunk is exactly one IPv4 datagram (total length == chunk length)
    assert sent and all(int.from_bytes(c[2:4], "big") == len(c) for c in sent)
    assert max(len(c) for c in sent) <= 1500


# --------------------------------------------------------------------------------------
# helpers for the kernel tests


def _endpoint(tun, seed: int) -> tuple[IpEndpoint, NetStack, TunFraming]:
    stack = NetStack(tun.peer_addr, mtu=tun.mtu, rng=random.Random(seed))
    framing = TunFraming(mtu=tun.mtu)
    return IpEndpoint(framing, stack), stack, framing


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
            f"cwnd={c.cwnd} rto={c.rto} counters={ {k: v for k, v in c.counters.items() if v} }"
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
    servers: list[Pop3Server] = []

    def pop3_binding(conn, now):
        srv = Pop3Server(accounts, store, hostname="pop.isp.example", now=now)
        servers.append(srv)
        return AppBinding(conn, srv)

    endpoint.listen(110, pop3_binding)
    driver = FdLineDriver(endpoint, tun.fd, packet_fd=True)
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
    print(diag)


# --------------------------------------------------------------------------------------
# dialsim client -> kernel socket server


KERNEL_SERVER = textwrap.dedent(
    """
    import hashlib, json, os, socket, sys
    addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = os.urandom(n)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(20)
    print("READY", flush=True)
    conn, peer = s.accept()
    conn.settimeout(20)
    conn.sendall(data)
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
            self._events.append(CloseRequested())

    def data_to_send(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def connection_lost(self, now: float) -> None:
        self.lost = True


class CloseRequested:
    """The application is done (AppBinding closes the TCP connection on this name)."""


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


def test_dialsim_client_exchanges_300k_with_kernel_server(tun_netns):
    tun = tun_netns
    port = 5300
    proc = tun.popen(
        [sys.executable, "-c", KERNEL_SERVER, tun.kernel_addr, str(port), str(BIG)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert _wait_line(proc, "READY", 15.0), f"kernel server did not start: {_finish(proc)}"

    endpoint, stack, framing = _endpoint(tun, seed=5300)
    reply = random.Random(42).randbytes(BIG)
    app = SinkThenSource(BIG, reply)
    binding = endpoint.connect(tun.kernel_addr, port, 0.0, lambda conn, now: AppBinding(conn, app))
    driver = FdLineDriver(endpoint, tun.fd, packet_fd=True)

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
    assert binding.conn.counters is not None
    assert stack.counters["ip_bad_checksum"] == 0 and stack.counters["tcp_bad_segments"] == 0, diag
    print(diag)
