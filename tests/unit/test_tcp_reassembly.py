"""Receive-side reassembly (RFC 9293 3.10.7.4): any arrival order, duplicates and
overlaps put the stream back together exactly once, and nothing is held twice."""

from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.proto.tcp_reassembly import ReassemblyQueue


@st.composite
def stream_and_arrivals(draw):
    """A stream, and segments covering it (cut anywhere, overlapping, some
    repeated) in any order."""
    stream = draw(st.binary(min_size=1, max_size=4000))
    cuts = sorted(draw(st.sets(st.integers(1, len(stream) - 1), max_size=60))) if len(stream) > 1 else []
    bounds = [0, *cuts, len(stream)]
    segments = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    # Overlapping segments: spans across several pieces, retransmitted "repacketized".
    extra = draw(st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(1, 1500)), max_size=20))
    segments += [(a, min(len(stream), a + n)) for a, n in extra]
    segments += draw(st.lists(st.sampled_from(segments), max_size=20))  # exact duplicates
    order = draw(st.permutations(segments))
    return stream, [(a, stream[a:b]) for a, b in order]


@given(stream_and_arrivals())
@settings(max_examples=300)
def test_any_order_duplication_and_overlap_reassembles_the_stream(case):
    stream, arrivals = case
    q = ReassemblyQueue()
    out = bytearray()
    seen = set()
    for offset, data in arrivals:
        before = q.next
        got = q.add(offset, data)
        assert q.next == before + len(got)  # next moves by exactly what was handed out
        out += got
        seen.add(offset)
        # at most one held segment per offset seen beyond next: no duplicate appends
        assert len(q) <= len({o for o in seen if o > q.next})
    assert bytes(out) == stream
    assert q.next == len(stream) and len(q) == 0 and not q.pending


@given(stream_and_arrivals(), st.data())
@settings(max_examples=100)
def test_fin_bounds_the_stream(case, data):
    stream, arrivals = case
    fin_at = len(stream)
    q = ReassemblyQueue()
    out = bytearray()
    # the FIN rides on a segment ending at the end of the stream, arriving at any point
    last = data.draw(st.sampled_from([i for i, (o, d) in enumerate(arrivals) if o + len(d) == fin_at] or [None]))
    for i, (offset, chunk) in enumerate(arrivals):
        out += q.add(offset, chunk, fin=i == last)
    if last is None:
        out += q.add(fin_at, b"", fin=True)
    assert bytes(out) == stream and q.at_fin and q.fin == fin_at
    # data beyond the FIN (a broken peer) is never delivered
    assert q.add(fin_at, b"more", fin=False) == b"" and q.next == fin_at


def test_held_segments_wait_for_the_hole():
    q = ReassemblyQueue(start=100)
    assert q.add(110, b"klmno") == b""
    assert q.add(105, b"fghij") == b""
    assert q.add(110, b"klm") == b""  # shorter duplicate of a held segment: dropped
    assert q.add(110, b"klmno") == b""  # exact duplicate: dropped
    assert len(q) == 2 and q.held_octets == 10 and q.pending
    assert q.add(100, b"abcdefg") == b"abcdefghijklmno"  # overlap with the held one
    assert q.next == 115 and len(q) == 0 and not q.pending
    assert q.add(90, b"x" * 30) == b"xxxxx"  # old octets in front are trimmed
    assert q.add(50, b"old") == b"" and q.next == 120


def test_a_longer_retransmission_replaces_a_shorter_held_segment():
    q = ReassemblyQueue()
    q.add(10, b"KL")
    q.add(10, b"KLMNOP")
    assert len(q) == 1 and q.held_octets == 6
    assert q.add(0, b"ABCDEFGHIJ") == b"ABCDEFGHIJKLMNOP"


def test_early_fin_is_remembered_and_held_data_beyond_it_dropped():
    q = ReassemblyQueue()
    q.add(20, b"zz")  # beyond the FIN to come: a broken peer
    q.add(5, b"fghij", fin=True)  # FIN at 10, out of order
    assert q.pending and not q.at_fin
    assert q.add(0, b"abcde") == b"abcdefghij"
    assert q.at_fin and q.next == 10 and len(q) == 0


def test_many_holes_filled_back_to_front_stay_linear():
    # 10 000 one-octet holes filled in reverse order: each add is one heap push.
    q = ReassemblyQueue()
    stream = bytes(i & 0xFF for i in range(20_000))
    for off in range(19_998, 0, -2):
        assert q.add(off, stream[off : off + 2]) == b""
    assert len(q) == 9_999
    assert q.add(0, stream[:2]) == stream and len(q) == 0
