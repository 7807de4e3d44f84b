"""RFC 1144 Van Jacobson TCP/IP header compression, framing-independent.

Scope: the compressor and decompressor of RFC 1144 sections 3 and 4 and
appendix A (``sl_compress_tcp`` / ``sl_uncompress_tcp`` semantics) for IPv4/TCP:

- a packet goes out as TYPE_IP (not TCP, a fragment, too short, or not a pure
  ACK-bearing segment: SYN, FIN, RST or no ACK), as UNCOMPRESSED_TCP (the IP
  datagram with its Protocol field replaced by the connection (slot) number:
  new connection, or anything changed that the compressed format cannot say:
  IP version/IHL/TOS, DF/fragment field, TTL, IP or TCP options, data offset,
  other TCP flags, urgent pointer without URG, a sequence or ack delta outside
  0..65535, a no-change retransmission, or changes that collide with the
  SPECIAL_I / SPECIAL_D encodings), or as COMPRESSED_TCP;
- compressed header: change mask (C I P S A W U), connection number if C, the
  TCP checksum (carried unchanged), then urgent, window, ack, seq and IP-id
  deltas; a delta is one octet 1..255, or 0 followed by two octets (0 and
  values > 255); SPECIAL_I (echoed interactive traffic) and SPECIAL_D
  (unidirectional data) imply the sequence/ack advance;
- the decompressor recomputes the IP header checksum, and after an error (or
  :meth:`VjDecompressor.toss`, called by the framing layer on a bad frame)
  discards COMPRESSED_TCP packets until one carries an explicit connection
  number or an UNCOMPRESSED_TCP packet arrives (section 4.1).  A packet that
  is too short for what its change mask announces, names a connection the
  decompressor does not know, or would make a datagram over 65535 octets is
  an error: it is tossed and counted (``errors``), never raised.

Kinds are the RFC's values: TYPE_IP 0x40, TYPE_UNCOMPRESSED_TCP 0x70,
TYPE_COMPRESSED_TCP 0x80, TYPE_ERROR 0x00.  PPP carries them as protocols 0x0021,
0x002F and 0x002D; CSLIP in the top bits of the first octet
(:func:`cslip_encode` / :func:`cslip_decode`, RFC 1144 appendix B).

The classes here are the readable reference.  Their compiled twin,
``dialsim.proto._vj`` (``_vj.c``, built by ``pip install -e .``), has the same
API, state and counters and gives the same output for any input
(``tests/unit/test_vj_c.py``); :func:`implementation` returns either pair of
classes by name, and raises instead of falling back when the twin is not built.
"""

from __future__ import annotations

import struct

from dialsim.compiled import IMPLEMENTATIONS, load, pick
from dialsim.proto.ipv4 import internet_checksum

TYPE_ERROR = 0x00
TYPE_IP = 0x40
TYPE_UNCOMPRESSED_TCP = 0x70
TYPE_COMPRESSED_TCP = 0x80

# change mask bits (RFC 1144 3.2.2)
NEW_C = 0x40
NEW_I = 0x20
TCP_PUSH_BIT = 0x10
NEW_S = 0x08
NEW_A = 0x04
NEW_W = 0x02
NEW_U = 0x01
SPECIAL_I = NEW_S | NEW_W | NEW_U
SPECIAL_D = NEW_S | NEW_A | NEW_W | NEW_U
SPECIALS_MASK = NEW_S | NEW_A | NEW_W | NEW_U

TH_FIN = 0x01
TH_SYN = 0x02
TH_RST = 0x04
TH_PUSH = 0x08
TH_ACK = 0x10
TH_URG = 0x20

MAX_SLOTS = 256


def _enc(n: int) -> bytes:
    """Delta: one octet 1..255, else 0 and two octets (also for zero: ENCODEZ)."""
    if 0 < n < 256:
        return bytes([n])
    return bytes([0, (n >> 8) & 0xFF, n & 0xFF])


def _dec(data: bytes, i: int) -> tuple[int, int] | None:
    """Decode a delta at ``data[i]``: (value, next index), or None if the packet ends first."""
    if i >= len(data):
        return None
    b = data[i]
    if b:
        return b, i + 1
    if i + 3 > len(data):
        return None
    return (data[i + 1] << 8) | data[i + 2], i + 3


# The IPv4 header's first ten octets: version/IHL + TOS, total length, id,
# flags + fragment offset, TTL + protocol.
_IP_WORDS = struct.Struct("!HHHHH")
# The TCP header from the sequence number on: seq, ack, data offset, flags,
# window, (checksum skipped), urgent pointer.
_TCP_FIELDS = struct.Struct("!IIBBH2xH")
_NOT_PU = ~(TH_PUSH | TH_URG)

# A header's fields as kept for a connection slot, unpacked once: version/IHL +
# TOS, total length, id, flags + fragment offset, TTL + protocol (IPv4); seq,
# ack, data offset, flags, window, urgent pointer (TCP).
Fields = tuple[int, int, int, int, int, int, int, int, int, int, int]


def _fields(packet: bytes) -> tuple[int, Fields] | None:
    """(IP + TCP header length, header fields) of an unfragmented IPv4/TCP segment
    that only carries ACK (and maybe PSH/URG) among SYN/FIN/RST/ACK; None for
    anything else (it goes as TYPE_IP)."""
    if len(packet) < 40:
        return None
    ip = _IP_WORDS.unpack_from(packet)
    vt, frag, ttlp = ip[0], ip[3], ip[4]
    if vt >> 12 != 4 or ttlp & 0xFF != 6:
        return None
    ihl = (vt >> 8 & 0x0F) * 4
    if ihl < 20 or frag & 0x3FFF or len(packet) < ihl + 20:
        return None
    tcp = _TCP_FIELDS.unpack_from(packet, ihl + 4)
    doff = (tcp[2] >> 4) * 4
    if doff < 20 or len(packet) < ihl + doff or (tcp[3] & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) != TH_ACK:
        return None
    return ihl + doff, ip + tcp


def _delta_encode(old: bytes, o: Fields, packet: bytes, n: Fields, hlen: int) -> tuple[int, bytes] | None:
    """(change mask without C and P, deltas) of ``packet`` (fields ``n``) against the
    saved header ``old`` (fields ``o``) of its connection (RFC 1144 3.2.3), or None
    if it must go uncompressed."""
    o_vt, old_len, o_id, o_frag, o_ttlp, o_seq, o_ack, o_off, o_flags, o_win, o_urg = o
    n_vt, new_len, n_id, n_frag, n_ttlp, n_seq, n_ack, n_off, flags, n_win, n_urg = n
    if o_vt != n_vt or o_frag != n_frag or o_ttlp != n_ttlp:
        return None  # version, IHL, TOS; flags (DF) / fragment offset; TTL, protocol
    th = (n_vt >> 8 & 0x0F) * 4
    doff = hlen - th
    if (
        o_off != n_off  # data offset (+ reserved bits)
        or (th > 20 and old[20:th] != packet[20:th])  # IP options
        or (doff > 20 and old[th + 20 : th + doff] != packet[th + 20 : th + doff])  # TCP options
        or (o_flags & _NOT_PU) != (flags & _NOT_PU)
    ):
        return None
    changes = 0
    deltas = b""
    if flags & TH_URG:
        deltas += _enc(n_urg)
        changes |= NEW_U
    elif n_urg != o_urg:
        return None
    dw = (n_win - o_win) & 0xFFFF
    if dw:
        deltas += _enc(dw)
        changes |= NEW_W
    da = (n_ack - o_ack) & 0xFFFFFFFF
    ds = (n_seq - o_seq) & 0xFFFFFFFF
    if da > 0xFFFF or ds > 0xFFFF:
        return None
    if da:
        deltas += _enc(da)
        changes |= NEW_A
    if ds:
        deltas += _enc(ds)
        changes |= NEW_S
    old_data = old_len - hlen
    if changes == 0:
        # Data after a bare ACK: compress; anything else is a retransmission
        # or window probe: send uncompressed in case the peer missed one.
        if not (new_len != old_len and old_len == hlen):
            return None
    elif changes in (SPECIAL_I, SPECIAL_D):
        return None
    elif changes == NEW_S | NEW_A:
        if ds == da == old_data and not o_flags & TH_URG:
            changes, deltas = SPECIAL_I, b""
    elif changes == NEW_S:
        if ds == old_data and not o_flags & TH_URG:
            changes, deltas = SPECIAL_D, b""
    did = (n_id - o_id) & 0xFFFF
    if did != 1:
        deltas += _enc(did)
        changes |= NEW_I
    return changes, deltas


class VjCompressor:
    """Transmit side of RFC 1144.

    ``slots``: connection slots the peer's decompressor has (its max-slot-id + 1).
    ``compress_slot_id``: the connection number may be omitted when unchanged
    (IPCP comp-slot-id; always true for CSLIP).
    ``compress(ip_packet) -> (kind, data)``.
    """

    def __init__(self, slots: int = 16, compress_slot_id: bool = True) -> None:
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError("slots must be 1..256")
        self.slots = slots
        self.compress_slot_id = compress_slot_id
        self._saved: list[tuple[bytes, Fields] | None] = [None] * slots
        self._by_key: dict[bytes, int] = {}
        self._lru: list[int] = list(range(slots))  # least recently used first
        self._last_xmit: int | None = None
        self.packets = 0
        self.compressed = 0
        self.uncompressed = 0
        self.ip = 0
        self.searches = 0
        self.misses = 0

    def compress(self, packet: bytes) -> tuple[int, bytes]:
        packet = bytes(packet)
        self.packets += 1
        parsed = _fields(packet)
        if parsed is None:
            self.ip += 1
            return TYPE_IP, packet
        hlen, fields = parsed
        th = (packet[0] & 0x0F) * 4
        key = packet[12:20] + packet[th : th + 4]
        self.searches += 1
        slot = self._by_key.get(key)
        if slot is None:
            self.misses += 1
            slot = self._lru[0]
            saved = self._saved[slot]
            if saved is not None:
                old = saved[0]
                oihl = (old[0] & 0x0F) * 4
                self._by_key.pop(old[12:20] + old[oihl : oihl + 4], None)
            self._by_key[key] = slot
            return self._uncompressed(slot, packet, hlen, fields)
        self._touch(slot)
        old, o_fields = self._saved[slot]  # type: ignore[misc]
        encoded = _delta_encode(old, o_fields, packet, fields, hlen)
        if encoded is None:
            return self._uncompressed(slot, packet, hlen, fields)
        changes, deltas = encoded
        if fields[8] & TH_PUSH:
            changes |= TCP_PUSH_BIT
        self._saved[slot] = (packet[:hlen], fields)
        if not self.compress_slot_id or self._last_xmit != slot:
            self._last_xmit = slot
            head = bytes((changes | NEW_C, slot))
        else:
            head = bytes((changes,))
        self.compressed += 1
        return TYPE_COMPRESSED_TCP, head + packet[th + 16 : th + 18] + deltas + packet[hlen:]

    def state(self) -> tuple[tuple[bytes | None, ...], tuple[int, ...], int | None]:
        """(saved header of each slot or None, slots least recently used first, last
        slot sent or None): what the compiled twin must hold too (tests compare them)."""
        saved = tuple(None if s is None else s[0] for s in self._saved)
        return saved, tuple(self._lru), self._last_xmit

    def _touch(self, slot: int) -> None:
        lru = self._lru
        if lru[-1] != slot:
            lru.remove(slot)
            lru.append(slot)

    def _uncompressed(self, slot: int, packet: bytes, hlen: int, fields: Fields) -> tuple[int, bytes]:
        self._touch(slot)
        self._saved[slot] = (packet[:hlen], fields)
        self._last_xmit = slot
        self.uncompressed += 1
        return TYPE_UNCOMPRESSED_TCP, packet[:9] + bytes((slot,)) + packet[10:]


class VjDecompressor:
    """Receive side of RFC 1144.

    ``decompress(kind, data) -> bytes | None``: the IPv4 datagram, or None when
    the packet is tossed (an error, or a COMPRESSED_TCP after an error without
    an explicit connection number).  Never raises on peer input.
    """

    def __init__(self, slots: int = 16) -> None:
        if not 1 <= slots <= MAX_SLOTS:
            raise ValueError("slots must be 1..256")
        self.slots = slots
        self._saved: list[tuple[bytes, Fields] | None] = [None] * slots
        self._last_recv = 0
        self._toss = True  # nothing known yet: wait for an explicit connection
        self.errors = 0
        self.tossed = 0
        self.packets = 0

    def toss(self) -> None:
        """The framing layer lost a frame: discard until resynchronised."""
        self._toss = True

    def state(self) -> tuple[tuple[bytes | None, ...], int, bool]:
        """(saved header of each slot or None, last slot received, tossing): what the
        compiled twin must hold too (tests compare them)."""
        return tuple(None if s is None else s[0] for s in self._saved), self._last_recv, self._toss

    @property
    def tossing(self) -> bool:
        """True while COMPRESSED_TCP packets without a connection number are discarded."""
        return self._toss

    def decompress(self, kind: int, data: bytes) -> bytes | None:
        if kind == TYPE_IP:
            self.packets += 1
            return bytes(data)
        if kind == TYPE_UNCOMPRESSED_TCP:
            return self._uncompressed(bytes(data))
        if kind == TYPE_COMPRESSED_TCP:
            return self._compressed(bytes(data))
        return self._error()

    def _error(self) -> None:
        self.errors += 1
        self._toss = True
        return None

    def _uncompressed(self, data: bytes) -> bytes | None:
        if len(data) < 40:
            return self._error()
        slot = data[9]
        ihl = (data[0] & 0x0F) * 4
        if slot >= self.slots or ihl < 20 or len(data) < ihl + 20:
            return self._error()
        hlen = ihl + (data[ihl + 12] >> 4) * 4
        if hlen < ihl + 20 or len(data) < hlen:
            return self._error()
        packet = data[:9] + b"\x06" + data[10:]
        fields = _IP_WORDS.unpack_from(packet) + _TCP_FIELDS.unpack_from(packet, ihl + 4)
        self._saved[slot] = (packet[:hlen], fields)
        self._last_recv = slot
        self._toss = False
        self.packets += 1
        return packet

    def _compressed(self, data: bytes) -> bytes | None:
        if not data:
            return self._error()
        changes = data[0]
        i = 1
        if changes & NEW_C:
            if len(data) < 2:
                return self._error()
            slot = data[1]
            if slot >= self.slots or self._saved[slot] is None:
                return self._error()
            self._toss = False
            self._last_recv = slot
            i = 2
        elif self._toss:
            self.tossed += 1
            return None
        saved = self._saved[self._last_recv]
        if saved is None or len(data) < i + 2:
            return self._error()
        old, o_fields = saved
        checksum = data[i : i + 2]  # the TCP checksum, carried unchanged
        decoded = _header_changes(changes, data, i + 2, o_fields, len(old))
        if decoded is None:
            return self._error()
        i, fields = decoded
        payload = data[i:]
        total = len(old) + len(payload)
        if total > 0xFFFF:
            return self._error()
        vt, _total, ident, frag, ttlp, seq, ack, off, flags, win, urg = fields
        fields = (vt, total, ident, frag, ttlp, seq, ack, off, flags, win, urg)
        h = bytearray(old)  # committed only if the whole header decodes
        _IP_WORDS.pack_into(h, 0, vt, total, ident, frag, ttlp)
        th = (vt >> 8 & 0x0F) * 4
        _TCP_FIELDS.pack_into(h, th + 4, seq, ack, off, flags, win, urg)
        h[th + 16 : th + 18] = checksum
        h[10:12] = b"\x00\x00"
        h[10:12] = internet_checksum(bytes(h[:th])).to_bytes(2, "big")
        header = bytes(h)
        self._saved[self._last_recv] = (header, fields)
        self.packets += 1
        return header + payload


def _header_changes(changes: int, data: bytes, i: int, o: Fields, hlen: int) -> tuple[int, Fields] | None:
    """Apply a COMPRESSED_TCP packet's change mask and deltas (from ``data[i]``) to
    the saved header's fields ``o``: (index after the deltas, the new fields but
    the total length), or None if the packet ends before its deltas do."""
    vt, total, ident, frag, ttlp, seq, ack, off, flags, win, urg = o
    flags = flags | TH_PUSH if changes & TCP_PUSH_BIT else flags & ~TH_PUSH & 0xFF
    special = changes & SPECIALS_MASK
    if special == SPECIAL_I:
        n = total - hlen
        ack, seq = ack + n, seq + n
    elif special == SPECIAL_D:
        seq += total - hlen
    else:
        for bit in (NEW_U, NEW_W, NEW_A, NEW_S):
            if not changes & bit:
                if bit == NEW_U:
                    flags &= ~TH_URG & 0xFF
                continue
            d = _dec(data, i)
            if d is None:
                return None
            v, i = d
            if bit == NEW_U:
                flags |= TH_URG
                urg = v
            elif bit == NEW_W:
                win = (win + v) & 0xFFFF
            elif bit == NEW_A:
                ack += v
            else:
                seq += v
    v = 1
    if changes & NEW_I:
        d = _dec(data, i)
        if d is None:
            return None
        v, i = d
    fields = (vt, total, (ident + v) & 0xFFFF, frag, ttlp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off,
              flags, win, urg)
    return i, fields


def cslip_encode(kind: int, data: bytes) -> bytes:
    """CSLIP frame for a compressor output: the type goes into the first octet's top bits."""
    if kind == TYPE_IP or not data:
        return bytes(data)
    if kind == TYPE_UNCOMPRESSED_TCP:
        return bytes([data[0] | TYPE_UNCOMPRESSED_TCP]) + data[1:]
    if kind == TYPE_COMPRESSED_TCP:
        return bytes([data[0] | TYPE_COMPRESSED_TCP]) + data[1:]
    raise ValueError(f"unknown VJ packet kind {kind:#x}")


def cslip_decode(packet: bytes) -> tuple[int, bytes]:
    """(kind, data) of a received CSLIP frame; TYPE_ERROR for anything unrecognisable."""
    if not packet:
        return TYPE_ERROR, b""
    c = packet[0]
    if c & 0x80:
        return TYPE_COMPRESSED_TCP, bytes([c & 0x7F]) + packet[1:]
    if c >= TYPE_UNCOMPRESSED_TCP:
        return TYPE_UNCOMPRESSED_TCP, bytes([c & 0x4F]) + packet[1:]
    if c >> 4 == 4:
        return TYPE_IP, bytes(packet)
    return TYPE_ERROR, bytes(packet)


def implementation(name: str) -> tuple[type, type]:
    """The (compressor, decompressor) classes of implementation ``"c"`` or ``"python"``.

    ``"python"``: :class:`VjCompressor` / :class:`VjDecompressor` above, the
    reference.  ``"c"``: ``dialsim.proto._vj``'s classes of the same names, API,
    state and output, compiled from ``_vj.c`` by ``pip install -e .``; the PPP and
    SLIP links run these.  If it is not built, ImportError says how to build it:
    never the reference in its place.
    """

    def compiled() -> tuple[type, type]:
        _vj = load("dialsim.proto._vj", "the compiled VJ header compression")
        return _vj.VjCompressor, _vj.VjDecompressor

    return pick(name, "VJ", (VjCompressor, VjDecompressor), compiled)


KIND_NAMES = {
    TYPE_IP: "ip",
    TYPE_UNCOMPRESSED_TCP: "uncompressed_tcp",
    TYPE_COMPRESSED_TCP: "compressed_tcp",
    TYPE_ERROR: "error",
}

__all__ = [
    "TYPE_ERROR",
    "TYPE_IP",
    "TYPE_UNCOMPRESSED_TCP",
    "TYPE_COMPRESSED_TCP",
    "KIND_NAMES",
    "IMPLEMENTATIONS",
    "implementation",
    "VjCompressor",
    "VjDecompressor",
    "cslip_encode",
    "cslip_decode",
]
