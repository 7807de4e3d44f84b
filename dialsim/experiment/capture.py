"""Write a replication's serial-line frames as a pcap file (simulated timestamps).

SLIP and CSLIP use LINKTYPE_SLIP (8): a 16-octet pseudo-header whose first octet
is the direction (1: sent by the subscriber) and second the packet type, then
the IPv4 datagram (for CSLIP, the datagram as reconstructed, so every TCP/IP
layer dissects).  PPP uses LINKTYPE_PPP_WITH_DIR (204): a direction octet then
the PPP frame without flags and FCS.
"""

from __future__ import annotations

from pathlib import Path

from dialsim.results.pcap import LINKTYPE_PPP_WITH_DIR, LINKTYPE_SLIP, PcapWriter

SLIP_TYPE_IP = 0x40


def write_capture(path: Path, outcome) -> int:
    log = outcome.capture
    if outcome.framing in ("slip", "cslip"):
        linktype = LINKTYPE_SLIP
    else:
        linktype = LINKTYPE_PPP_WITH_DIR
    n = 0
    with PcapWriter(path, linktype) as w:
        for t, sent, frame, _kind in sorted(log.frames, key=lambda f: f[0]):
            if linktype == LINKTYPE_SLIP:
                data = bytes([1 if sent else 0, SLIP_TYPE_IP]) + bytes(14) + frame
            else:
                data = bytes([1 if sent else 0]) + frame
            w.write(t, data)
            n += 1
    return n
