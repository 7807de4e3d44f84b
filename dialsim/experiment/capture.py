"""Write a replication's serial-line frames as a capture file (simulated timestamps).

PPP: classic pcap, LINKTYPE_PPP_WITH_DIR (204): a direction octet (1: sent by
the subscriber) then the PPP frame without flags and FCS, so LCP, PAP/CHAP,
IPCP, VJ-compressed TCP and POP3 all dissect.  SLIP and CSLIP: pcapng with the
IPv4 datagrams (for CSLIP as reconstructed) and a direction flag per packet,
because Wireshark has no dissector for LINKTYPE_SLIP (see results/pcap.py).
"""

from __future__ import annotations

from pathlib import Path

from dialsim.results.pcap import LINKTYPE_PPP_WITH_DIR, PcapngWriter, PcapWriter


def capture_name(framing: str, replication: int) -> str:
    ext = "pcap" if framing == "ppp" else "pcapng"
    return f"line-rep{replication}.{ext}"


def write_capture(path: Path, outcome, secret: str = "") -> int:
    """Write the frames; the subscriber's password, wherever it crosses the line in
    clear (PAP, POP3 PASS), is replaced by as many '*' so lengths stay true (the
    TCP checksum of that one segment then no longer matches its bytes)."""
    frames = sorted(outcome.capture.frames, key=lambda f: f[0])
    if secret:
        needle, mask = secret.encode(), b"*" * len(secret.encode())
        frames = [(t, sent, f.replace(needle, mask), k) for t, sent, f, k in frames]
    if outcome.framing == "ppp":
        with PcapWriter(path, LINKTYPE_PPP_WITH_DIR) as w:
            for t, sent, frame, _kind in frames:
                w.write(t, bytes([1 if sent else 0]) + frame)
    else:
        with PcapngWriter(path) as w:
            for t, sent, packet, _kind in frames:
                w.write(t, packet, sent)
    return len(frames)
