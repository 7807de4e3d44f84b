"""ITU-T V.42bis: round trips, the compiled and the reference implementation
byte for byte, transparent/compressed mode switching, compression ratios,
hand-worked streams (escapes, ECM, STEPUP, RESET) and the decoder's error
conditions (V.42bis 5.8)."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dialsim.link import v42bis, v42bis_ref
from dialsim.link.v42bis import V42bisError, implementation
from tests.v42bis_corpus import (
    FLUSHED_THEN_EMPTY,
    MAIL_CHUNK,
    base64_of_random,
    chunked,
    english_text,
    random_octets,
)

IMPLS = list(v42bis.IMPLEMENTATIONS)
p1s = st.integers(*v42bis.P1_RANGE)
p2s = st.integers(*v42bis.P2_RANGE)


@st.composite
def payloads(draw) -> bytes:
    """Random octets, a small alphabet, or repeated fragments (compressible
    enough to reach compressed mode, fill the dictionary and recycle leaves)."""
    kind = draw(st.sampled_from(["binary", "alphabet", "fragments"]))
    if kind == "binary":
        return draw(st.binary(max_size=3000))
    if kind == "alphabet":
        alphabet = draw(st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True))
        return bytes(draw(st.lists(st.sampled_from(alphabet), max_size=4000)))
    parts = draw(
        st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.integers(1, 40)), max_size=12)
    )
    return b"".join(fragment * times for fragment, times in parts)


@st.composite
def chunkings(draw) -> list[bytes]:
    """The payload cut anywhere, with a few empty chunks inserted: an empty
    ``encode`` must change nothing (cuts alone rarely give one in mid-stream)."""
    data = draw(payloads())
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    edges = [0, *cuts, len(data)]
    chunks = [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]
    for at in draw(st.lists(st.integers(0, len(chunks)), max_size=4)):
        chunks.insert(at, b"")
    return chunks


def run(impl: str, chunks: list[bytes], p1: int = 2048, p2: int = 32):
    enc_cls, dec_cls = implementation(impl)
    enc, dec = enc_cls(p1, p2), dec_cls(p1, p2)
    encoded = [enc.encode(c) for c in chunks]
    decoded = [dec.decode(e) for e in encoded]
    return enc, dec, encoded, decoded


@pytest.mark.parametrize("impl", IMPLS)
@given(chunks=chunkings(), p1=p1s, p2=p2s)
@settings(max_examples=1000, deadline=None)
@example(chunks=FLUSHED_THEN_EMPTY, p1=512, p2=7).via("discovered failure")
def test_every_chunk_decodes_on_its_own_in_order(impl, chunks, p1, p2):
    enc, dec, encoded, decoded = run(impl, chunks, p1, p2)
    assert decoded == chunks
    assert enc.octets_in == dec.octets_out == sum(map(len, chunks))
    assert enc.octets_out == dec.octets_in == sum(map(len, encoded))


@given(chunks=chunkings(), p1=p1s, p2=p2s, split=st.integers(1, 50))
@settings(max_examples=1000, deadline=None)
@example(chunks=FLUSHED_THEN_EMPTY, p1=512, p2=7, split=5).via("discovered failure")
def test_compiled_and_reference_give_the_same_bytes(chunks, p1, p2, split):
    c_enc, _, c_out, _ = run("c", chunks, p1, p2)
    py_enc, _, py_out, _ = run("python", chunks, p1, p2)
    assert c_out == py_out
    assert c_enc.counters() == py_enc.counters()
    assert c_enc.transparent == py_enc.transparent
    # the decoders agree too, on the stream split anywhere
    stream = b"".join(c_out)
    pieces = [stream[i : i + split] for i in range(0, len(stream), split)]
    _, c_dec_cls = implementation("c")
    _, py_dec_cls = implementation("python")
    c_dec, py_dec = c_dec_cls(p1, p2), py_dec_cls(p1, p2)
    c_back = b"".join(c_dec.decode(p) for p in pieces)
    assert c_back == b"".join(py_dec.decode(p) for p in pieces) == b"".join(chunks)
    assert c_dec.counters() == py_dec.counters()


@pytest.mark.parametrize("impl", IMPLS)
@given(chunks=chunkings(), p1=p1s, p2=p2s)
@settings(max_examples=300, deadline=None)
@example(chunks=FLUSHED_THEN_EMPTY, p1=512, p2=7)
def test_an_empty_chunk_sends_nothing_and_changes_nothing(impl, chunks, p1, p2):
    """The peer cannot see an empty chunk, so the encoder's state may not change
    (7.9: nothing pending, nothing to flush): the same bytes as without it."""
    enc_cls, _ = implementation(impl)
    with_empty, without = enc_cls(p1, p2), enc_cls(p1, p2)
    sent = [with_empty.encode(c) for c in chunks]
    assert [out for out, c in zip(sent, chunks, strict=True) if not c] == [b""] * chunks.count(b"")
    expected = [without.encode(c) for c in chunks if c]
    assert [out for out, c in zip(sent, chunks, strict=True) if c] == expected
    assert with_empty.counters() == without.counters()


def _decode_or_error(impl: str, pieces: list[bytes], p1: int, p2: int):
    _, dec_cls = implementation(impl)
    dec, out = dec_cls(p1, p2), []
    try:
        for piece in pieces:
            out.append(dec.decode(piece))
    except V42bisError as exc:
        return out, str(exc)
    return out, None


@given(garbage=st.lists(st.binary(max_size=200), max_size=10), p1=p1s, p2=p2s)
@settings(max_examples=200, deadline=None)
def test_garbage_gets_the_same_answer_from_both_decoders(garbage, p1, p2):
    """Random input: the same octets, then the same V.42bis error (5.8) or none."""
    # start in compressed mode half of the time: ESC ECM
    pieces = [b"\x00\x00", *garbage] if p1 % 2 else garbage
    assert _decode_or_error("c", pieces, p1, p2) == _decode_or_error("python", pieces, p1, p2)


@pytest.mark.parametrize("impl", IMPLS)
def test_long_streams_round_trip_with_a_full_dictionary(impl):
    data = english_text(60_000) + base64_of_random(30_000) + english_text(90_000)[60_000:]
    for p1, p2 in ((512, 6), (2048, 32), (4096, 250)):
        chunks = chunked(data, 700)
        enc, dec, _, decoded = run(impl, chunks, p1, p2)
        assert decoded == chunks
        assert enc.switches_to_compressed >= 2 and enc.switches_to_transparent >= 1


def _ratio(impl, data, chunk=MAIL_CHUNK, p1=2048, p2=32):
    enc, _, encoded, decoded = run(impl, chunked(data, chunk), p1, p2)
    assert b"".join(decoded) == data
    return sum(map(len, encoded)) / len(data), enc


def test_english_text_compresses_in_compressed_mode():
    ratio, enc = _ratio("c", english_text(200_000))
    assert 0.40 < ratio < 0.50  # spandsp: 0.449 on the same text
    assert not enc.transparent
    assert enc.switches_to_compressed == 1 and enc.switches_to_transparent == 0
    assert enc.compressed_octets_in > 0.99 * enc.octets_in


def test_base64_of_random_octets_stays_transparent():
    ratio, enc = _ratio("c", base64_of_random(200_000))
    assert 0.999 < ratio < 1.005
    assert enc.transparent
    assert enc.compressed_octets_in < 0.01 * enc.octets_in


def test_random_octets_are_sent_transparent_with_escapes():
    ratio, enc = _ratio("c", random_octets(200_000))
    assert enc.switches_to_compressed == 0 and enc.compressed_octets_in == 0
    # one escape (ESC EID) per 256 octets on average
    assert ratio == pytest.approx(1 + 1 / 256, abs=0.001)


def test_text_after_an_attachment_compresses_again():
    data = english_text(20_000) + base64_of_random(40_000) + english_text(60_000)[20_000:]
    ratio, enc = _ratio("c", data)
    assert enc.switches_to_compressed == 2 and enc.switches_to_transparent == 1
    assert not enc.transparent
    assert ratio < 0.75


@pytest.mark.parametrize("impl", IMPLS)
def test_escape_character_in_transparent_mode_steps_by_51(impl):
    enc_cls, dec_cls = implementation(impl)
    enc = enc_cls()
    # the escape character starts at 0; after it occurs in the data it is 51, then 102
    assert enc.encode(b"\x00\x00\x33") == b"\x00\x01\x00\x33\x01"
    assert enc.encode(b"\x66\x33") == b"\x66\x01\x33"
    assert dec_cls().decode(b"\x00\x01\x00\x33\x01\x66\x01\x33") == b"\x00\x00\x33\x66\x33"


@pytest.mark.parametrize("impl", IMPLS)
def test_reset_command_reinitialises_the_decoder(impl):
    _, dec_cls = implementation(impl)
    # EID: octet 0 (escape becomes 51); ESC RESET: escape back to 0; EID again
    assert dec_cls().decode(b"\x00\x01\x33\x02\x00\x01") == b"\x00\x00"


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_built_compressed_stream(impl):
    _, dec_cls = implementation(impl)
    # ESC ECM, then 9-bit codewords LSB first: 'a' (97+3), 'b' (98+3),
    # then 259 = the string "ab" added when 'b' arrived, then FLUSH and padding
    codes = [100, 101, 259, 1]
    bits = sum(c << (9 * i) for i, c in enumerate(codes))
    stream = b"\x00\x00" + bits.to_bytes(5, "little")
    assert dec_cls().decode(stream) == b"abab"


@pytest.mark.parametrize("impl", IMPLS)
def test_codeword_size_steps_up_to_n1(impl):
    enc_cls, dec_cls = implementation(impl)
    enc = enc_cls(p1=2048)
    data = english_text(100_000)
    out = b"".join(enc.encode(c) for c in chunked(data[:20_000]))
    dec = dec_cls(p1=2048)
    assert dec.decode(out) == data[:20_000]
    if impl == "python":  # white box: C2 reached N1 = 11 and no further
        assert enc._dict.c2 == dec._dict.c2 == 11


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "stream, what",
    [
        (b"\x00\x05", "reserved command code"),
        (b"\x00\x00" + (300).to_bytes(2, "little"), "empty dictionary entry"),
        (b"\x00\x00" + (259).to_bytes(2, "little"), "empty dictionary entry"),
    ],
)
def test_decoder_error_conditions(impl, stream, what):
    _, dec_cls = implementation(impl)
    with pytest.raises(V42bisError, match=what):
        dec_cls().decode(stream)


@pytest.mark.parametrize("impl", IMPLS)
def test_stepup_beyond_n1_is_an_error(impl):
    _, dec_cls = implementation(impl)
    with pytest.raises(V42bisError, match="STEPUP"):
        dec_cls(p1=512).decode(b"\x00\x00" + (2).to_bytes(2, "little"))  # N1 = 9


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("p1, p2", [(511, 32), (4097, 32), (2048, 5), (2048, 251)])
def test_parameters_outside_the_negotiable_ranges_are_refused(impl, p1, p2):
    enc_cls, dec_cls = implementation(impl)
    for cls in (enc_cls, dec_cls):
        with pytest.raises(ValueError, match="P1|P2"):
            cls(p1, p2)


def test_dictionary_stays_a_consistent_tree():
    """White box on the reference: after leaf recycling every entry in use hangs
    from an entry in use, the child index and the child counts agree."""
    enc = v42bis_ref.V42bisEncoder(p1=512, p2=8)
    for c in chunked(english_text(30_000) + random_octets(5_000), 333):
        enc.encode(c)
    d = enc._dict
    used = [n for n in range(v42bis_ref.N5, d.n2) if d.depth[n]]
    assert len(used) == d.n2 - v42bis_ref.N5 - 1  # full, but for C1 itself
    assert d.depth[d.c1] == 0
    counts = [0] * d.n2
    for n in used:
        up = d.parent[n]
        assert d.depth[up] == d.depth[n] - 1 and d.depth[n] <= d.n7
        assert d.child[(up, d.octet[n])] == n
        counts[up] += 1
    assert counts == d.children
    assert len(d.child) == len(used)


def test_choosing_an_implementation_is_explicit(monkeypatch):
    assert implementation("python") == (v42bis_ref.V42bisEncoder, v42bis_ref.V42bisDecoder)
    assert implementation("c") == (v42bis.V42bisEncoder, v42bis.V42bisDecoder)
    assert v42bis.V42bisEncoder.__mro__[2].__module__ == "dialsim.link._v42bis"
    with pytest.raises(ValueError):
        implementation("fortran")
    monkeypatch.setattr(v42bis, "_v42bis", None)
    with pytest.raises(ImportError, match="pip install -e"):
        implementation("c")
