"""Classic libpcap files of the serial line, stamped with simulated time.

Format: the libpcap file format (24-octet global header, 16-octet record
headers, microsecond timestamps, little-endian, magic 0xa1b2c3d4), with two link
types from the tcpdump.org LINKTYPE registry:

- ``LINKTYPE_SLIP`` (8): each record starts with a 16-octet pseudo-header:
  direction (0 received by the capturing side, 1 sent by it), packet type
  (0x40 IP, 0x70 uncompressed TCP, 0x80 compressed TCP; RFC 1144), 14 octets of
  the CSLIP header (or zeros), then the IP datagram;
- ``LINKTYPE_PPP_WITH_DIR`` (204): direction octet (same meaning), then the PPP
  frame from the address/control field (or from the protocol field when ACFC is
  in effect, RFC 1661 section 6.6) without flags, escaping or FCS (RFC 1662).

The writer never reads a clock: every record's time is passed in.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DIR_RECEIVED",
    "DIR_SENT",
    "LINKTYPE_PPP_WITH_DIR",
    "LINKTYPE_SLIP",
    "SLIP_TYPE_COMPRESSED_TCP",
    "SLIP_TYPE_IP",
    "SLIP_TYPE_UNCOMPRESSED_TCP",
    "PcapWriter",
    "ppp_record",
    "slip_record",
]

LINKTYPE_SLIP = 8
LINKTYPE_PPP_WITH_DIR = 204

DIR_RECEIVED = 0
DIR_SENT = 1

SLIP_TYPE_IP = 0x40
SLIP_TYPE_UNCOMPRESSED_TCP = 0x70
SLIP_TYPE_COMPRESSED_TCP = 0x80

_MAGIC = 0xA1B2C3D4
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def slip_record(
    sent: bool, datagram: bytes, packet_type: int = SLIP_TYPE_IP, cslip_header: bytes = b""
) -> bytes:
    """A LINKTYPE_SLIP record body: 16-octet pseudo-header then ``datagram``."""
    if len(cslip_header) > 14:
        raise ValueError("the CSLIP header field holds at most 14 octets")
    head = bytes((DIR_SENT if sent else DIR_RECEIVED, packet_type)) + cslip_header.ljust(14, b"\0")
    return head + datagram


def ppp_record(sent: bool, frame: bytes) -> bytes:
    """A LINKTYPE_PPP_WITH_DIR record body: direction octet then the unescaped frame sans FCS."""
    return bytes((DIR_SENT if sent else DIR_RECEIVED,)) + frame


class PcapWriter:
    """Write records to a classic pcap file.  Use as a context manager or call :meth:`close`.

    ``path`` may also be a binary file object (left open by :meth:`close`).
    """

    def __init__(self, path: str | Path | BinaryIO, linktype: int, snaplen: int = 65535) -> None:
        if isinstance(path, str | Path):
            self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._f = path
            self._owned = False
        self.linktype = linktype
        self.snaplen = snaplen
        self.records = 0
        self._f.write(_GLOBAL.pack(_MAGIC, 2, 4, 0, 0, snaplen, linktype))

    def write(self, t: float, data: bytes, orig_len: int | None = None) -> None:
        """One record at simulated time ``t`` seconds (>= 0)."""
        if t < 0:
            raise ValueError(f"pcap time must not be negative, got {t}")
        usec_total = round(t * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        caplen = min(len(data), self.snaplen)
        self._f.write(_RECORD.pack(sec, usec, caplen, orig_len if orig_len is not None else len(data)))
        self._f.write(data[:caplen])
        self.records += 1

    def close(self) -> None:
        if self._owned:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- pcapng with per-packet direction (for SLIP and CSLIP) ------------------
#
# Wireshark has no dissector for LINKTYPE_SLIP's pseudo-header, so SLIP and
# CSLIP lines are written as pcapng: one interface of LINKTYPE_RAW (IPv4
# datagrams) and, on every Enhanced Packet Block, the epb_flags option whose
# low two bits give the direction (1 inbound, 2 outbound; pcapng spec,
# draft-ietf-opsawg-pcapng section 4.3.1).  Every IP/TCP/POP3 layer then
# dissects natively and "Direction" shows which side sent the frame.

LINKTYPE_RAW = 101
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_IDB = 0x00000001
_PCAPNG_EPB = 0x00000006


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """pcapng with one interface (``linktype``, microsecond timestamps) and a
    direction on each packet; ``write(t, data, sent)``; always pass simulated time."""

    def __init__(self, path: str | Path, linktype: int = LINKTYPE_RAW, snaplen: int = 65535,
                 comment: str = "dialsim serial line") -> None:
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.records = 0
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
        self._f.write(_block(_PCAPNG_SHB, shb))
        opt = _pad4(comment.encode())
        opts = struct.pack("<HH", 1, len(comment.encode())) + opt + struct.pack("<HH", 0, 0)
        idb = struct.pack("<HHI", linktype, 0, snaplen) + opts
        self._f.write(_block(_PCAPNG_IDB, idb))

    def write(self, t: float, data: bytes, sent: bool) -> None:
        ts = int(round(t * 1_000_000))
        flags = 2 if sent else 1
        body = (
            struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
            + _pad4(data)
            + struct.pack("<HHI", 2, 4, flags)
            + struct.pack("<HH", 0, 0)
        )
        self._f.write(_block(_PCAPNG_EPB, body))
        self.records += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
