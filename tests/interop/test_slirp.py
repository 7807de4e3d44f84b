"""Interop: dialsim's subscriber stack against slirp (SLIP, CSLIP, PPP) and Dovecot POP3.

slirp 1.0.17 is an independent SLIP (RFC 1055), CSLIP (RFC 1144) and PPP
(RFC 1661/1662, IPCP RFC 1332) implementation with its own BSD TCP/IP; its
host alias 10.0.2.2 reaches the host's 127.0.0.1, where a private Dovecot
serves POP3 (RFC 1939).  For each framing, dialsim's framing + NetStack +
Pop3Client + RetrievalSession (keep mode, UIDLs) run on the other end of the
pty via :class:`dialsim.drivers.direct.DirectLine`, fetch every message
(one of ~100 KiB) and must get each byte for byte as Dovecot serves it (CRLF);
a second POP3 session over the same link (same UIDL memory) must see the same
UIDLs and fetch nothing.  slirp paces its output at about one frame per 50 ms,
so ~100 KiB takes ~10 s whatever its "baudrate".
"""

from __future__ import annotations

import hashlib
import random

import pytest

from dialsim.drivers.direct import DirectLine
from dialsim.hosts.endpoint import AppBinding, FrameLog
from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.hosts.subscriber import Computer, SubscriberSettings
from dialsim.proto.pop3 import Pop3Client, ResponseReceived
from dialsim.proto.ppp import IpcpUp, LcpUp

pytestmark = pytest.mark.interop

SLIRP_HOST_ALIAS = "10.0.2.2"
SLIRP_CLIENT_ADDR = "10.0.2.15"


def _message(n: int, body_lines: int, seed: int) -> bytes:
    """A CRLF message (as Dovecot serves it) with dot-lines to exercise stuffing."""
    rng = random.Random(seed)
    head = (
        f"From: isp@example.net\r\nTo: subscriber@example.net\r\n"
        f"Subject: message {n} over slirp\r\nMessage-ID: <{n}.{seed}@example.net>\r\n\r\n"
    ).encode()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .,"
    lines = []
    for i in range(body_lines):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 77)))
        if i % 17 == 3:
            line = "." + line  # dot-stuffed on the wire
        lines.append(line)
    lines.append(".")  # a lone dot in the body, the nastiest case
    return head + "\r\n".join(lines).encode() + b"\r\n"


@pytest.fixture
def mailbox(dovecot):
    """Dovecot with four messages (one ~100 KiB); returns (dovecot, {sha256: bytes})."""
    msgs = [
        _message(1, 3, 1),
        _message(2, 40, 2),
        _message(3, 2600, 3),  # ~100 KiB
        _message(4, 200, 4),
    ]
    assert 90 * 1024 < len(msgs[2]) < 120 * 1024
    for i, m in enumerate(msgs):
        dovecot.deliver(m, name=f"100000000{i}.M{i}P1.slirp")
    return dovecot, {hashlib.sha256(m).hexdigest(): m for m in msgs}


def _retrieve(driver, ep, port: int, seen: set[str], *, timeout: float = 25.0):
    """One POP3 session over the (up) link: keep mode, UIDLs; ``seen`` is the
    client's UIDL memory across calls.  Returns (session, {msg number: UIDL})."""
    now = driver.now()
    client = Pop3Client(now=now)
    session = RetrievalSession(
        client,
        user="subscriber",
        password="dialup-pw",
        policy=RetrievalPolicy(mode="keep", use_uidl=True),
        seen_uidls=seen,
    )
    listing: dict[int, str] = {}

    def on_event(ev, now):
        if isinstance(ev, ResponseReceived) and ev.verb == "UIDL" and ev.ok and ev.body:
            for row in ev.body.decode("ascii").splitlines():
                n, uid = row.split()
                listing[int(n)] = uid
        session.on_event(ev, now)

    binding = ep.connect(
        SLIRP_HOST_ALIAS,
        port,
        now,
        lambda conn, now: AppBinding(conn, client, on_event=on_event),
    )
    driver.run_until(lambda: session.done and binding.closed, timeout)
    assert session.done, f"POP3 session did not finish in {timeout} s: {session!r}"
    assert session.error is None and session.quit_ok, session.error
    assert binding.closed, f"TCP did not close after QUIT: {binding.conn.state}"
    return session, listing


def _retrieve_twice(driver, ep, port: int, stored: dict[str, bytes]) -> None:
    """First call fetches everything intact; the second (same UIDL memory, a new
    TCP connection over the same link) sees the same UIDLs and fetches nothing."""
    seen: set[str] = set()
    first, uidls1 = _retrieve(driver, ep, port, seen)
    got = {hashlib.sha256(data).hexdigest(): data for _uid, _n, data, _t in first.retrieved}
    assert len(first.retrieved) == len(stored) == first.message_count
    assert set(got) == set(stored)
    for sha, data in got.items():
        assert data == stored[sha]
    assert sorted(uidls1) == list(range(1, len(stored) + 1))
    assert {n: uid for uid, n, _d, _t in first.retrieved} == uidls1
    assert seen == set(uidls1.values()) and len(seen) == len(stored)

    second, uidls2 = _retrieve(driver, ep, port, seen)
    assert uidls2 == uidls1
    assert second.retrieved == [] and second.skipped == sorted(uidls1)


def _kinds_sent(log: FrameLog) -> set[str]:
    return {kind for _t, sent, _b, kind in log.frames if sent}


def _kinds_received(log: FrameLog) -> set[str]:
    return {kind for _t, sent, _b, kind in log.frames if not sent}


@pytest.mark.parametrize("framing", ["slip", "cslip"])
def test_slip_and_cslip_retrieve_from_dovecot_through_slirp(framing, slirp_pty, mailbox):
    dovecot, stored = mailbox
    # slirp autodetects CSLIP from the first VJ frame; its MTU set to SLIP's 1006
    line = slirp_pty("slip", args=("mtu 1006",))
    log = FrameLog(packets_only=False)
    # The same computer the simulation dials with, set up as a slirp user did.
    ep = Computer(
        SubscriberSettings(framing=framing, mtu=1006, address=SLIRP_CLIENT_ADDR,
                           isp_address=SLIRP_HOST_ALIAS),
        rng=random.Random(1055),
        now=0.0,
        capture=log,
    )
    status = ep.status
    assert status.up and status.local_ip == SLIRP_CLIENT_ADDR
    driver = DirectLine(ep, line.fd)

    _retrieve_twice(driver, ep, dovecot.port, stored)

    sent = _kinds_sent(log)
    if framing == "cslip":
        # slirp switched to CSLIP: our compressed headers were understood and
        # answered (it compresses its own headers back once it has seen ours).
        assert "compressed_tcp" in sent and "uncompressed_tcp" in sent
        assert "compressed_tcp" in _kinds_received(log), line.stderr_text()
    else:
        assert sent == {"ip"} and _kinds_received(log) == {"ip"}
    assert ep.framing.counters.frames_dropped == 0
    assert ep.stack.counters["ip_bad_checksum"] == 0


@pytest.mark.parametrize("vj", [True, False], ids=["vj", "no-vj"])
def test_ppp_negotiates_with_slirp_and_retrieves_from_dovecot(vj, slirp_pty, mailbox):
    dovecot, stored = mailbox
    line = slirp_pty("ppp")
    log = FrameLog(packets_only=False)
    ep = Computer(
        SubscriberSettings(
            framing="ppp",
            mtu=1500,
            isp_address=SLIRP_HOST_ALIAS,  # slirp asks us for its own address
            ppp_auth="none",  # slirp asks for no authentication
            ppp_vj=vj,
            ppp_dns=False,
        ),
        rng=random.Random(1661),
        now=0.0,
        capture=log,
    )
    status = ep.status
    assert not status.up
    driver = DirectLine(ep, line.fd)
    assert driver.run_until(lambda: status.up, 15.0), (
        f"PPP did not come up: phase={ep.framing.phase} lcp={ep.framing.lcp.state} "
        f"ipcp={ep.framing.ipcp.state} events={status.events} {line.stderr_text()!r}"
    )
    # slirp assigns the dial-up side 10.0.2.15 (its "special address" + 15)
    assert status.local_ip == SLIRP_CLIENT_ADDR
    assert ep.stack.address == SLIRP_CLIENT_ADDR
    assert status.peer_ip == SLIRP_HOST_ALIAS
    events = [ev for _t, ev in status.events]
    lcp_up = next(i for i, ev in enumerate(events) if isinstance(ev, LcpUp))
    assert lcp_up < next(i for i, ev in enumerate(events) if isinstance(ev, IpcpUp))

    _retrieve_twice(driver, ep, dovecot.port, stored)

    sent, received = _kinds_sent(log), _kinds_received(log)
    assert {"lcp", "ipcp"} <= sent and {"lcp", "ipcp"} <= received
    # slirp 1.0.17 acks our VJ option (RFC 1332 IP-Compression-Protocol, 15
    # slots) and asks for VJ itself: TCP headers go compressed both ways.
    assert status.vj is vj
    if vj:
        assert {"compressed_tcp", "uncompressed_tcp"} <= sent
        assert "compressed_tcp" in received
    else:
        assert "compressed_tcp" not in sent and "uncompressed_tcp" not in sent
        assert "ip" in sent and "ip" in received
    c = ep.framing.counters
    assert c["bad_fcs"] == 0 and c["protocol_rejects_received"] == 0
    assert c["vj_tossed"] == 0 and c["ip_dropped_not_up"] == 0
