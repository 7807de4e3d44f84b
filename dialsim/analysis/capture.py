"""Read the serial line's capture (``dialsim run --pcap``) and compute goodput over time.

Formats read (what :mod:`dialsim.experiment.capture` writes, and what other
tools write for the same links):

- classic libpcap, either byte order, microsecond or nanosecond timestamps,
  with ``LINKTYPE_PPP_WITH_DIR`` (204: a direction octet, then the PPP frame
  from its address/control or protocol field, RFC 1661/1662),
  ``LINKTYPE_RAW`` (101) or ``LINKTYPE_SLIP`` (8, 16-octet pseudo-header);
- pcapng (draft-ietf-opsawg-pcapng): Section Header, Interface Description
  (its ``if_tsresol``) and Enhanced Packet Blocks, the direction from the
  ``epb_flags`` option (1 inbound, 2 outbound).

Van Jacobson compressed TCP/IP (RFC 1144) is expanded with dialsim's own
decompressor, one per direction, so every TCP segment's ports and sequence
number are known.  "Down" is towards the subscriber (what it received),
"up" what it sent.  Goodput counts each TCP data octet once, the first time
its sequence number is seen in its connection and direction: retransmissions
and duplicates are not goodput.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd

from dialsim.proto import vj
from dialsim.proto.ipv4 import PROTO_TCP, parse_packet
from dialsim.proto.ppp import PROTOCOL_KINDS
from dialsim.proto.tcp_segment import parse_segment, seq_diff

__all__ = ["goodput", "read_capture"]

LINKTYPE_SLIP = 8
LINKTYPE_RAW = 101
LINKTYPE_PPP_WITH_DIR = 204

# kind name (the PPP protocol's, or the VJ packet type's) -> RFC 1144 packet type
_VJ_TYPE = {name: kind for kind, name in vj.KIND_NAMES.items() if kind != vj.TYPE_ERROR}

COLUMNS = ["t_s", "direction", "frame_octets", "protocol", "src_port", "dst_port", "seq",
           "payload_octets", "new_octets"]


def _pcap_records(data: bytes):
    """(linktype, [(t_s, sent | None, body)]) of a classic pcap file."""
    magic = data[:4]
    order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
             b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if order is None:
        raise ValueError("not a pcap or pcapng file (unknown magic number)")
    scale = 1e-9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 1e-6
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(order + "IIII")
    out, i = [], 24
    while i + 16 <= len(data):
        sec, frac, caplen, _orig = rec.unpack_from(data, i)
        body = data[i + 16:i + 16 + caplen]
        i += 16 + caplen
        if linktype == LINKTYPE_PPP_WITH_DIR and body:
            out.append((sec + frac * scale, body[0] == 1, body[1:]))
        elif linktype == LINKTYPE_SLIP and len(body) >= 16:
            out.append((sec + frac * scale, body[0] == 1, body[1:2] + body[16:]))
        else:
            out.append((sec + frac * scale, None, body))
    return linktype, out


def _pcapng_records(data: bytes):
    """(linktype of the first interface, [(t_s, sent | None, body)]) of a pcapng file."""
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    head = struct.Struct(order + "II")
    interfaces: list[tuple[int, float]] = []
    out, i = [], 0
    while i + 12 <= len(data):
        btype, total = head.unpack_from(data, i)
        if total < 12:
            raise ValueError(f"pcapng: bad block length {total} at offset {i}")
        body = data[i + 8:i + total - 4]
        if btype == 0x00000001:  # Interface Description Block
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interfaces.append((linktype, _tsresol(body[8:], order)))
        elif btype == 0x00000006 and interfaces:  # Enhanced Packet Block
            iface, hi, lo, caplen, _orig = struct.unpack_from(order + "IIIII", body, 0)
            packet = body[20:20 + caplen]
            flags = _epb_flags(body[20 + caplen + (-caplen % 4):], order)
            sent = None if flags is None or flags & 3 == 0 else (flags & 3) == 2
            out.append((((hi << 32) | lo) * interfaces[iface][1], sent, packet))
        i += total
    return (interfaces[0][0] if interfaces else LINKTYPE_RAW), out


def _options(opts: bytes, order: str):
    i = 0
    while i + 4 <= len(opts):
        code, length = struct.unpack_from(order + "HH", opts, i)
        if code == 0:
            return
        yield code, opts[i + 4:i + 4 + length]
        i += 4 + length + (-length % 4)


def _tsresol(opts: bytes, order: str) -> float:
    for code, value in _options(opts, order):
        if code == 9 and value:  # if_tsresol
            v = value[0]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
    return 1e-6


def _epb_flags(opts: bytes, order: str) -> int | None:
    for code, value in _options(opts, order):
        if code == 2 and len(value) == 4:
            return struct.unpack(order + "I", value)[0]
    return None


def _ppp_payload(frame: bytes) -> tuple[str, bytes]:
    """(kind, information field) of a PPP frame without flags and FCS."""
    if frame[:2] == b"\xff\x03":
        frame = frame[2:]
    if not frame:
        return "other", b""
    if frame[0] & 1:  # protocol field compressed to one octet (RFC 1661 PFC)
        proto, info = frame[0], frame[1:]
    else:
        proto, info = int.from_bytes(frame[:2], "big"), frame[2:]
    return PROTOCOL_KINDS.get(proto, "other"), info


class _Flows:
    """The highest sequence number seen per TCP connection and direction."""

    def __init__(self) -> None:
        self.high: dict[tuple, int] = {}

    def new_octets(self, key: tuple, seq: int, length: int) -> int:
        end = (seq + length) & 0xFFFFFFFF
        high = self.high.get(key)
        if high is None:
            self.high[key] = end
            return length
        ahead = seq_diff(end, high)
        if ahead <= 0:
            return 0
        self.high[key] = end
        return min(length, ahead)


def read_capture(path: str | Path) -> pd.DataFrame:
    """One row per frame on the serial line: ``t_s`` (s since the replication
    started), ``direction`` ("down": to the subscriber, "up": from it),
    ``frame_octets`` (the frame as captured: for PPP without flags, escapes and
    FCS; for SLIP the IP datagram), ``protocol`` (lcp, pap, chap, ipcp, ip,
    compressed_tcp and uncompressed_tcp (RFC 1144), other), for TCP ``src_port``, ``dst_port``,
    ``seq``, ``payload_octets`` (data octets) and ``new_octets`` (data octets
    not seen before in that connection and direction: goodput).

    >>> packets = read_capture(RESULTS / "line-rep0.pcap")
    >>> list(packets.columns)
    ['t_s', 'direction', 'frame_octets', 'protocol', 'src_port', 'dst_port', 'seq', 'payload_octets', 'new_octets']
    >>> sorted(set(packets.direction))
    ['down', 'up']
    >>> bool((packets.new_octets <= packets.payload_octets).all())
    True
    """
    data = Path(path).read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        linktype, records = _pcapng_records(data)
    else:
        linktype, records = _pcap_records(data)
    decompressors = {True: vj.VjDecompressor(256), False: vj.VjDecompressor(256), None: vj.VjDecompressor(256)}
    flows = _Flows()
    rows = []
    for t, sent, body in records:
        if linktype == LINKTYPE_PPP_WITH_DIR:
            kind, info = _ppp_payload(body)
        elif linktype == LINKTYPE_SLIP:
            kind, info = vj.KIND_NAMES.get(body[0], "other") if body else "other", body[1:]
        else:
            kind, info = ("ip", body) if body[:1] and body[0] >> 4 == 4 else ("other", body)
        row = [t, "up" if sent else "down", len(body) - (linktype == LINKTYPE_SLIP), kind,
               None, None, None, 0, 0]
        if kind in _VJ_TYPE:
            datagram = decompressors[sent].decompress(_VJ_TYPE[kind], info)
            ip = parse_packet(datagram) if datagram else None
            seg = parse_segment(ip.payload) if ip is not None and ip.protocol == PROTO_TCP else None
            if seg is not None:
                key = (ip.src, seg.src_port, ip.dst, seg.dst_port)
                row[4:9] = [seg.src_port, seg.dst_port, seg.seq, len(seg.data),
                            flows.new_octets(key, seg.seq, len(seg.data)) if seg.data else 0]
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    types = {"t_s": "float64", "direction": "string", "frame_octets": "int64",
             "protocol": "string", "src_port": "Int64", "dst_port": "Int64", "seq": "Int64",
             "payload_octets": "int64", "new_octets": "int64"}
    return df.astype(types)


def goodput(packets: pd.DataFrame, bin_s: float = 1.0, direction: str = "down",
            start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
    """Octets per second in consecutive bins of ``bin_s`` seconds, one way.

    Columns: ``t_s`` (start of the bin, s), ``goodput_Bps`` (TCP data octets
    seen for the first time, B/s), ``payload_Bps`` (all TCP data octets,
    retransmissions included, B/s) and ``line_Bps`` (captured frame octets,
    headers and link control included, B/s).  ``start_s``/``end_s`` limit the
    window (default: the first to the last frame), e.g. to one RETR.

    >>> g = goodput(read_capture(RESULTS / "line-rep0.pcap"), bin_s=2.0)
    >>> list(g.columns)
    ['t_s', 'goodput_Bps', 'payload_Bps', 'line_Bps']
    >>> bool((g.goodput_Bps <= g.line_Bps).all())
    True
    """
    if bin_s <= 0:
        raise ValueError(f"bin_s must be positive, got {bin_s}")
    p = packets[packets["direction"] == direction]
    lo = float(p["t_s"].min()) if start_s is None and len(p) else float(start_s or 0.0)
    hi = float(p["t_s"].max()) if end_s is None and len(p) else float(end_s if end_s is not None else lo)
    p = p[(p["t_s"] >= lo) & (p["t_s"] <= hi)]
    n = max(1, int(np.ceil((hi - lo) / bin_s)) if hi > lo else 1)
    idx = np.minimum(((p["t_s"].to_numpy(dtype=float) - lo) // bin_s).astype(int), n - 1)

    def per_bin(col: str) -> np.ndarray:
        return np.bincount(idx, weights=p[col].to_numpy(dtype=float), minlength=n) / bin_s

    return pd.DataFrame({"t_s": lo + bin_s * np.arange(n), "goodput_Bps": per_bin("new_octets"),
                         "payload_Bps": per_bin("payload_octets"),
                         "line_Bps": per_bin("frame_octets")})
