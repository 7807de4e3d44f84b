"""The compiled RFC 1144 twin (``dialsim/proto/_vj.c``) against the reference classes of
``dialsim/proto/vj.py``: the same (kind, data), datagrams, state and counters for any
input, and compress -> decompress round trips; the PPP and SLIP links run the compiled
ones, and nothing falls back to the reference silently."""

import struct
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dialsim.proto
from dialsim.proto import ppp, slip, vj
from dialsim.proto.ipv4 import internet_checksum
from tests.unit import test_vj as reference_tests

CCompressor, CDecompressor = vj.implementation("c")
PyCompressor, PyDecompressor = vj.implementation("python")

# ---- packets: a few TCP connections with advancing seq/ack/id/window, and mutations


def ip_tcp(*, sport=1025, dport=110, dst=b"\x0a\x00\x00\x01", seq=0, ack=0, flags=0x10, win=8192,
           urg=0, ipid=1, data=b"", ip_opts=b"", tcp_opts=b"", tos=0, ttl=64, frag=0x4000, proto=6,
           length=None, reserved=0):
    """An IPv4/TCP datagram with a valid IP header checksum (TCP checksum: a constant)."""
    ihl, doff = 5 + len(ip_opts) // 4, 5 + len(tcp_opts) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      doff << 4 | reserved, flags, win, 0xBEEF, urg) + tcp_opts
    total = 4 * ihl + len(tcp) + len(data) if length is None else length
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, total, ipid & 0xFFFF, frag, ttl, proto, 0,
                     b"\x0a\x00\x00\x02", dst) + ip_opts
    ip = ip[:10] + internet_checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + tcp + data


class Connection:
    def __init__(self, k):
        self.fixed = {"sport": 1025 + k, "dport": (110, 25, 80)[k % 3],
                      "dst": bytes([10, 0, 0, 1 + k // 3])}
        self.seq, self.ack, self.ipid, self.win = 1000 + 7919 * k, 5000 + 104729 * k, 1 + k, 8760
        self.prev_size, self.last, self.urg = 0, None, 0
        self.tcp_opts = self.ip_opts = b""


def _timestamp(value):
    return b"\x01\x01\x08\x0a" + struct.pack("!II", value, 7)


def _option_change(conn, mutation, param):
    if mutation == "tcpopts":
        conn.tcp_opts = b"" if conn.tcp_opts else b"\x01" * 4 * (param % 3) + _timestamp(param)
    elif mutation == "timestamp" and conn.tcp_opts:
        conn.tcp_opts = conn.tcp_opts[:-12] + _timestamp(param)
    elif mutation == "ipopts":
        conn.ip_opts = b"" if conn.ip_opts else b"\x01" * 4 * (1 + param % 10)


# what each mutation does to one segment's fields (those that change the connection are above)
_FIELD_MUTATIONS = {
    "syn": {"flags": 0x12}, "fin": {"flags": 0x11}, "rst": {"flags": 0x14}, "noack": {"flags": 0x08},
    "tos": {"tos": 0x10}, "ttl": {"ttl": 32}, "frag": {"frag": 0x2000}, "nodf": {"frag": 0},
    "offset": {"frag": 0x0010}, "udp": {"proto": 17}, "ns": {"reserved": 1},
}


def _segment(conn, size, push, mutation, param):
    kw = dict(conn.fixed, seq=conn.seq, ack=conn.ack, ipid=conn.ipid, win=conn.win, urg=conn.urg,
              flags=0x18 if push else 0x10, data=bytes([param & 0xFF]) * size,
              ip_opts=conn.ip_opts, tcp_opts=conn.tcp_opts)
    kw.update(_FIELD_MUTATIONS.get(mutation, {}))
    if mutation == "urg":
        kw.update(flags=kw["flags"] | 0x20)
    elif mutation == "length":
        kw.update(length=param)
    pkt = ip_tcp(**kw)
    if mutation == "short":
        pkt = pkt[: param % 40]
    elif mutation == "version":
        pkt = bytes([0x65]) + pkt[1:]
    elif mutation == "ipcsum":
        pkt = pkt[:10] + bytes([pkt[10] ^ 0x5A]) + pkt[11:]
    elif mutation == "flip" and pkt:
        i = param % min(len(pkt), 80)
        pkt = pkt[:i] + bytes([pkt[i] ^ (param >> 8 | 1) & 0xFF]) + pkt[i + 1:]
    return pkt


def _advance(conn, ack_adv, id_adv, dwin, mutation, param):
    conn.ack += conn.prev_size if ack_adv == "echo" else ack_adv
    conn.ipid += id_adv
    conn.win = max(0, min(0xFFFF, conn.win + dwin))
    if mutation == "seqjump":
        conn.seq += 70000 + param
    elif mutation == "seqback":
        conn.seq -= 1 + param % 3000
    elif mutation == "resend":  # the previous segment's data again, maybe repacketized
        conn.seq -= conn.prev_size
    elif mutation in ("urg", "urgptr"):  # the urgent pointer stays in the field afterwards
        conn.urg = param % 3


def flow(steps):
    """The datagrams of ``steps`` (see STEP): several connections, each advancing."""
    conns, out = {}, []
    for k, size, ack_adv, id_adv, dwin, push, mutation, param, *_ in steps:
        conn = conns.setdefault(k, Connection(k))
        if mutation == "garbage":
            out.append(bytes([param >> 8, param & 0xFF]) * (param % 37))
            continue
        if mutation == "retransmit" and conn.last is not None:
            out.append(conn.last)
            continue
        _advance(conn, ack_adv, id_adv, dwin, mutation, param)
        _option_change(conn, mutation, param)
        pkt = _segment(conn, size, push, mutation, param)
        conn.last = pkt
        conn.seq = (conn.seq + size) & 0xFFFFFFFF
        conn.prev_size = size
        out.append(pkt)
    return out


# mutations that keep every datagram a faithful IPv4 packet (right length and checksum)
FAITHFUL = ["none"] * 25 + ["syn", "fin", "rst", "noack", "urg", "urgptr", "tcpopts", "timestamp",
                            "ipopts", "seqjump", "seqback", "retransmit", "tos", "ttl", "frag",
                            "nodf", "offset", "udp", "short", "version", "resend", "ns"]
ANY = FAITHFUL + ["length", "ipcsum", "flip", "garbage"]
# what the line does to a compressor's output on its way to the decompressors
CHANNEL = ["pass"] * 8 + ["drop", "drop_toss", "toss", "truncate", "flip", "garbage", "dup", "kind"]
KINDS = [vj.TYPE_IP, vj.TYPE_UNCOMPRESSED_TCP, vj.TYPE_COMPRESSED_TCP, vj.TYPE_ERROR, 0x30, 0x81]


def steps(mutations, channel=("pass",)):
    step = st.tuples(
        st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4, 5]),  # connection: more than some slot counts
        st.one_of(st.sampled_from([0, 0, 1, 536, 1460]), st.integers(0, 300)),  # data octets
        st.sampled_from(["echo"] * 3 + [0] * 3 + [1, 300, 1460, 65535, 70000]),  # ack advance
        st.sampled_from([1, 1, 1, 0, 2, 300, 65535]),  # IP id advance
        st.sampled_from([0] * 5 + [1, -1, 255, 256, -8000]),  # window change
        st.booleans(),  # PSH
        st.sampled_from(mutations),
        st.integers(0, 0xFFFF),  # the mutation's parameter
        st.sampled_from(channel),
        st.binary(max_size=60),  # channel garbage
        st.sampled_from(KINDS),
    )
    return st.lists(step, max_size=40)


SLOTS = st.sampled_from([1, 2, 3, 4, 16, 256])


def public(obj, names):
    return {n: getattr(obj, n) for n in names}


def compressor_names():
    return sorted(n for n in vars(PyCompressor()) if not n.startswith("_"))


def decompressor_names():
    return sorted([n for n in vars(PyDecompressor()) if not n.startswith("_")] + ["tossing"])


def compress_both(slots, slot_id, packets):
    """Both compressors' outputs, checked equal (with state and counters) after every packet."""
    c, p, names = CCompressor(slots, slot_id), PyCompressor(slots, slot_id), compressor_names()
    outs = []
    for pkt in packets:
        got, want = c.compress(pkt), p.compress(pkt)
        assert got == want and type(got[1]) is bytes
        assert c.state() == p.state()
        assert public(c, names) == public(p, names)
        outs.append(want)
    return outs


def line(kind, data, action, param, junk, junk_kind):
    """What arrives for one compressor output: (kind, data) items; "toss" asks for a toss()."""
    if action == "drop":
        return []
    if action == "drop_toss":
        return ["toss"]
    if action == "toss":
        return ["toss", (kind, data)]
    if action == "truncate":  # often inside the change mask, slot, checksum and deltas
        return [(kind, data[: param % (len(data) + 1) if param & 1 else (param >> 1) % 12])]
    if action == "flip" and data:
        i = param % min(len(data), 50)
        return [(kind, data[:i] + bytes([data[i] ^ (param >> 8 | 1) & 0xFF]) + data[i + 1:])]
    if action == "garbage":
        return [(junk_kind, junk), (kind, data)]
    if action == "dup":
        return [(kind, data), (kind, data)]
    if action == "kind":
        return [(junk_kind, data)]
    return [(kind, data)]


def decompress_both(slots, arrivals):
    c, p, names = CDecompressor(slots), PyDecompressor(slots), decompressor_names()
    for item in arrivals:
        if item == "toss":
            c.toss()
            p.toss()
        else:
            got, want = c.decompress(*item), p.decompress(*item)
            assert got == want and type(got) is type(want)
        assert c.state() == p.state()
        assert public(c, names) == public(p, names)


# ---- the properties


@settings(max_examples=300, deadline=None)
@given(SLOTS, st.booleans(), steps(ANY, CHANNEL))
def test_compiled_compressor_and_decompressor_match_the_reference(slots, slot_id, flow_steps):
    """Any sequence of datagrams (flows, mutations, garbage, more connections than
    slots): the same (kind, data), slot state and counters after each; then the same
    outputs through a lossy, corrupting line into both decompressors."""
    outs = compress_both(slots, slot_id, flow(flow_steps))
    arrivals = []
    for (kind, data), (*_, param, action, junk, junk_kind) in zip(outs, flow_steps, strict=True):
        arrivals += line(kind, data, action, param, junk, junk_kind)
    decompress_both(slots, arrivals)


# a COMPRESSED_TCP packet naming a connection (maybe known), then anything
NAMING = st.builds(lambda mask, slot, rest: (vj.TYPE_COMPRESSED_TCP, bytes([mask | 0x40, slot]) + rest),
                   st.integers(0, 255), st.integers(0, 4), st.binary(max_size=8))
GARBAGE = st.one_of(st.tuples(st.sampled_from(KINDS), st.binary(max_size=90)), NAMING)


@settings(max_examples=300, deadline=None)
@given(SLOTS, st.lists(GARBAGE, max_size=20), st.lists(st.integers(0, 20), max_size=3))
def test_compiled_decompressor_matches_on_garbage(slots, garbage, toss_at):
    """Garbage, with toss() between, after a valid start on three connections: the same
    output, state and counters."""
    start = [ip_tcp(sport=1025 + k, seq=k, ipid=k, data=b"a") for k in range(3)]
    start.append(ip_tcp(sport=1025, seq=1, ipid=1, data=b"b"))
    arrivals = [*compress_both(slots, True, start)]
    for i, item in enumerate(garbage):
        arrivals += ["toss"] * toss_at.count(i) + [item]
    decompress_both(slots, arrivals)


@settings(max_examples=200, deadline=None)
@given(SLOTS, st.booleans(), steps(FAITHFUL))
def test_compress_then_decompress_round_trips(slots, slot_id, flow_steps):
    """Faithful datagrams over a lossless line come out as they went in, in both."""
    packets = flow(flow_steps)
    for comp, decomp in (vj.implementation("c"), vj.implementation("python")):
        c, d = comp(slots, slot_id), decomp(slots)
        for pkt in packets:
            assert d.decompress(*c.compress(pkt)) == pkt
        assert d.errors == d.tossed == 0


# ---- the deterministic corners


def _after(first, **second):
    """A segment of ``first``'s connection, then the next one with fields of ``second``."""
    return [ip_tcp(**first), ip_tcp(**dict(first, **second))]


CORNERS = {
    # URG in the saved header: no SPECIAL_I / SPECIAL_D, whatever the deltas say
    "urg_then_echo": _after(dict(seq=10, ack=20, data=b"u" * 5, flags=0x30, urg=2),
                            seq=15, ack=25, ipid=2, flags=0x10),
    "urg_then_data": _after(dict(seq=10, ack=20, data=b"u" * 5, flags=0x30, urg=2),
                            seq=15, ipid=2, flags=0x10),
    # nothing but the length changed: only data after a bare ACK compresses
    "data_after_bare_ack": _after(dict(seq=10, ack=20), data=b"d" * 7, ipid=2),
    "resend_longer": _after(dict(seq=10, ack=20, data=b"r" * 5), data=b"r" * 9, ipid=2),
    "resend_same": _after(dict(seq=10, ack=20, data=b"r" * 5), ipid=2),
    # deltas whose mask looks like a special one: sent uncompressed
    "looks_special_i": _after(dict(seq=10, ack=20, data=b"s" * 5, flags=0x30, urg=1),
                              seq=15, win=9000, flags=0x30, ipid=2),
    "looks_special_d": _after(dict(seq=10, ack=20, data=b"s" * 5, flags=0x30, urg=1),
                              seq=15, ack=21, win=9000, flags=0x30, ipid=2),
}


@pytest.mark.parametrize("name", sorted(CORNERS))
@pytest.mark.parametrize("slot_id", [True, False])
def test_rfc1144_corners_match_the_reference(name, slot_id):
    outs = compress_both(16, slot_id, CORNERS[name])
    decompress_both(16, outs)


def test_oversize_and_unknown_connection_are_errors_in_both():
    first = ip_tcp(seq=1, data=b"x" * 10)
    cases = [
        [(vj.TYPE_UNCOMPRESSED_TCP, first[:9] + b"\x00" + first[10:]),
         (vj.TYPE_COMPRESSED_TCP, b"\x00\x12\x34" + bytes(0xFFFF - 39)),  # 65536 octets
         (vj.TYPE_COMPRESSED_TCP, b"\x00\x12\x34" + bytes(0xFFFF - 40))],  # tossed
        [(vj.TYPE_COMPRESSED_TCP, b"\x40\x03\x12\x34")],  # a connection never seen
        [(vj.TYPE_UNCOMPRESSED_TCP, first[:9] + b"\x20" + first[10:])],  # slot 32 of 16
    ]
    for arrivals in cases:
        decompress_both(16, arrivals)
    decompress_both(16, cases[0][:1] + ["toss"] + [(vj.TYPE_COMPRESSED_TCP, b"\x40\x00\x12\x34")]
                    + [(vj.TYPE_COMPRESSED_TCP, b"\x00\x12\x34" + bytes(0xFFFF - 40))])  # 65535


def test_compiled_classes_take_any_bytes_like_and_kind_like_python():
    pkt = ip_tcp(seq=5, data=b"hello")
    for wrap in (bytes, bytearray, memoryview):
        c, p = CCompressor(), PyCompressor()
        assert c.compress(wrap(pkt)) == p.compress(wrap(pkt))
        assert c.compress(wrap(pkt[:30])) == p.compress(wrap(pkt[:30]))
    for kind in (64.0, True, 1 << 70, -1, "x"):
        c, p = CDecompressor(), PyDecompressor()
        assert c.decompress(kind, bytearray(pkt)) == p.decompress(kind, bytearray(pkt))
        assert (c.errors, c.packets) == (p.errors, p.packets)


def test_compiled_methods_take_the_reference_arguments():
    pkt = ip_tcp(seq=5, data=b"hello")
    for comp, decomp in (vj.implementation("c"), vj.implementation("python")):
        c, d = comp(), decomp()
        assert d.decompress(data=c.compress(packet=pkt)[1], kind=vj.TYPE_UNCOMPRESSED_TCP) == pkt
        assert d.decompress(vj.TYPE_IP, data=b"E") == b"E"
        for method, args, kw in ((c.compress, (), {}), (c.compress, (pkt, pkt), {}),
                                 (c.compress, (), {"p": pkt}), (d.decompress, (vj.TYPE_IP,), {}),
                                 (d.decompress, (1, b"", 2), {})):
            with pytest.raises(TypeError):
                method(*args, **kw)


def test_compiled_classes_keep_the_reference_constructor():
    assert public(CCompressor(), compressor_names()) == public(PyCompressor(), compressor_names())
    assert public(CCompressor(3, False), compressor_names()) == public(
        PyCompressor(slots=3, compress_slot_id=False), compressor_names())
    assert public(CDecompressor(slots=7), decompressor_names()) == public(
        PyDecompressor(7), decompressor_names())
    for bad in (0, 257):
        for cls in (CCompressor, CDecompressor, PyCompressor, PyDecompressor):
            with pytest.raises(ValueError, match="slots must be 1..256"):
                cls(slots=bad)


REFERENCE_TESTS = sorted(n for n in vars(reference_tests) if n.startswith("test_"))


@pytest.mark.parametrize("name", REFERENCE_TESTS)
def test_reference_examples_hold_for_the_compiled_classes(name, monkeypatch):
    """Every test of test_vj.py, run again with the compiled classes in its namespace."""
    monkeypatch.setattr(reference_tests, "VjCompressor", CCompressor)
    monkeypatch.setattr(reference_tests, "VjDecompressor", CDecompressor)
    getattr(reference_tests, name)()


def test_ppp_and_slip_run_the_compiled_classes():
    assert (ppp.VjCompressor, ppp.VjDecompressor) == (CCompressor, CDecompressor)
    link = slip.SlipLink(vj=True)
    assert type(link._compressor) is CCompressor and type(link._decompressor) is CDecompressor


def test_an_unbuilt_module_is_an_import_error_not_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "dialsim.proto._vj", None)  # as if not built
    monkeypatch.delattr(dialsim.proto, "_vj")
    with pytest.raises(ImportError, match="pip install -e"):
        vj.implementation("c")
    assert vj.implementation("python") == (vj.VjCompressor, vj.VjDecompressor)
    with pytest.raises(ValueError, match="one of"):
        vj.implementation("cython")
