"""ITU-T V.42bis (01/1990) data compression: a small pure-Python reference.

Scope: the encoder and the decoder of one direction of a V.42bis data
compression function (BTLZ), as the recommendation defines them, for the
parameters negotiated in V.42's XID exchange:

- P1 = N2, the number of codewords (dialsim accepts 512..4096; default 2048):
  codewords 0..2 are the control codewords ETM, FLUSH and STEPUP, 3..258 the
  256 single octets (the tree roots), N5 = 259 .. N2-1 the strings;
- P2 = N7, the longest string (6..250; default 32).

Procedures, with the recommendation's section numbers:

- 6.3 string matching: the longest string in the dictionary, except that the
  string may not be extended into the entry that the previous invocation of
  the procedure created;
- 6.4 adding the matched string plus the next octet (unless that is longer
  than N7 or already there), at codeword C1;
- 6.5 recovering the entry to use next: C1 steps on (from N2-1 back to N5) to
  the next entry without children; a leaf still in use is detached from its
  parent (this is how a full dictionary recycles its leaves);
- 7.4 codeword size: codewords go out in C2 bits (9 at first); before a
  codeword >= C3 the encoder sends STEPUP, and C2 += 1, C3 *= 2;
- 7.8 the compressibility test (its method is the implementer's; dialsim's is
  :data:`TEST_OCTETS` below) switches between transparent mode (octets as
  they are, the current escape character followed by EID when it occurs in
  the data, the escape character then stepping by 51) and compressed mode
  (codewords), with ESC ECM and ETM (the latter padded to an octet boundary);
- 7.9 FLUSH: the partial string's codeword, then FLUSH and zero bits up to the
  octet boundary when the codewords did not end on one.

Codewords are packed least significant bit first.  Both sides start in
transparent mode; in transparent mode both run the string matching procedure
over the data so that their dictionaries stay equal.  The dictionary lives as
long as the object (one call).  ``docs/v42bis.md`` says where this differs
from spandsp's implementation and why.

This module is the readable reference; ``dialsim/link/_v42bis.c`` is the same
procedure in C and must produce the same bytes (property tests check it).
Both loop per octet; the link model uses the compiled one.
"""

from __future__ import annotations

__all__ = [
    "Counters",
    "ECM",
    "EID",
    "ESCAPE_STEP",
    "ETM",
    "FLUSH",
    "N5",
    "P1_DEFAULT",
    "P1_RANGE",
    "P2_DEFAULT",
    "P2_RANGE",
    "RESET",
    "STEPUP",
    "TEST_OCTETS",
    "V42bisDecoder",
    "V42bisEncoder",
    "V42bisError",
    "check_parameters",
]

N3 = 8  # character size in bits
N4 = 256  # characters in the alphabet
N6 = 3  # control codewords
N5 = N4 + N6  # first dictionary entry that stores a string

ETM, FLUSH, STEPUP = 0, 1, 2  # control codewords, compressed mode
ECM, EID, RESET = 0, 1, 2  # command codes after the escape character, transparent mode
ESCAPE_STEP = 51  # the escape character steps by this after each use in the data

P1_RANGE = (512, 4096)
P2_RANGE = (6, 250)
P1_DEFAULT = 2048
P2_DEFAULT = 32

TEST_OCTETS = 256
"""dialsim's compressibility test (V.42bis 7.8 leaves the method open): at the
end of each string, once at least this many octets have been matched since the
last test, compare the codeword bits those strings took (or would have taken)
with 8 bits per octet.  Transparent -> compressed when the codewords would save
more than 1/16; compressed -> transparent when they cost more than the octets."""


class V42bisError(ValueError):
    """A V.42bis error condition (V.42bis 5.8): the peer's stream is not valid."""


def check_parameters(p1: int, p2: int) -> None:
    if not P1_RANGE[0] <= p1 <= P1_RANGE[1]:
        raise ValueError(f"P1 (codewords) must be in {P1_RANGE[0]}..{P1_RANGE[1]}, got {p1}")
    if not P2_RANGE[0] <= p2 <= P2_RANGE[1]:
        raise ValueError(f"P2 (string length) must be in {P2_RANGE[0]}..{P2_RANGE[1]}, got {p2}")


class Counters:
    """``counters()``: the attributes named in ``COUNTERS`` (shared with the compiled twin)."""

    COUNTERS: tuple[str, ...] = ()

    def counters(self) -> dict[str, int]:
        return {name: int(getattr(self, name)) for name in self.COUNTERS}


class _Dictionary:
    """The dictionary (6.1, 6.2) and the string matching procedure (6.3-6.5).

    Encoder and decoder both own one.  ``cur`` is the string matched so far
    (0: none), ``pending`` the string whose extension by the next octet is
    still to be added after a cut, ``last_created`` the entry created when
    the current string began (it may not be matched: 6.3 b).
    """

    def __init__(self, p1: int, p2: int) -> None:
        check_parameters(p1, p2)
        self.n2 = p1
        self.n7 = p2
        self.n1 = (p1 - 1).bit_length()  # N1: the largest codeword size
        self.reset()

    def reset(self) -> None:
        n2 = self.n2
        self.parent = [0] * n2  # 0: a root, or an empty entry
        self.octet = [0] * n2
        self.depth = [0] * n2  # string length; 0 for an empty entry
        self.children = [0] * n2
        self.child: dict[tuple[int, int], int] = {}
        for c in range(N4):
            self.octet[c + N6] = c
            self.depth[c + N6] = 1
        self.c1 = N5  # next empty entry
        self.c2 = N3 + 1  # codeword size
        self.c3 = 2 * N4  # threshold for the codeword size
        self.cur = 0
        self.pending = 0
        self.last_created = 0

    def add(self, string: int, octet: int) -> int:
        """6.4: add ``string`` + ``octet`` unless too long or present; the new entry or 0."""
        if self.depth[string] >= self.n7 or (string, octet) in self.child:
            return 0
        new = self.c1
        self.parent[new] = string
        self.octet[new] = octet
        self.depth[new] = self.depth[string] + 1
        self.child[(string, octet)] = new
        self.children[string] += 1
        self._recover()
        return new

    def _recover(self) -> None:
        """6.5: the next entry to use is the next one without children; detach it."""
        c1 = self.c1
        while True:
            c1 += 1
            if c1 == self.n2:
                c1 = N5
            if self.children[c1] == 0:
                break
        up = self.parent[c1]
        if up:
            del self.child[(up, self.octet[c1])]
            self.children[up] -= 1
            self.parent[c1] = 0
            self.depth[c1] = 0
        self.c1 = c1

    def step(self, octet: int) -> int:
        """Feed one octet to string matching; the codeword of the string it ended, or 0."""
        cur = self.cur
        if cur:
            nxt = self.child.get((cur, octet), 0)
            if nxt and nxt != self.last_created:
                self.cur = nxt
                return 0
            self.last_created = self.add(cur, octet)
        else:
            self.last_created = self.add(self.pending, octet) if self.pending else 0
            self.pending = 0
        self.cur = octet + N6
        return cur

    def cut(self) -> int:
        """End the current string without an octet (flush, ECM); its codeword or 0.

        With no string in progress (an empty chunk right after a flush) there
        is nothing to end: the string cut before stays the one that the next
        octet extends (6.4), as the peer, which saw nothing, expects.
        """
        cur = self.cur
        if cur:
            self.pending = cur
            self.cur = 0
        return cur

    def in_use(self, codeword: int) -> bool:
        return N6 <= codeword < self.n2 and self.depth[codeword] > 0

    def string(self, codeword: int) -> bytes:
        out = bytearray(self.depth[codeword])
        i = len(out)
        while codeword:
            i -= 1
            out[i] = self.octet[codeword]
            codeword = self.parent[codeword]
        return bytes(out)


class _Coder(Counters):
    """What an encoder and a decoder both hold."""

    COUNTERS = ("octets_in", "octets_out", "switches_to_compressed", "switches_to_transparent")

    def __init__(self, p1: int = P1_DEFAULT, p2: int = P2_DEFAULT) -> None:
        self.p1 = p1
        self.p2 = p2
        self._dict = _Dictionary(p1, p2)
        self.transparent = True
        self._escape = 0  # the escape character
        self._bits = 0  # codeword bits, least significant first
        self._nbits = 0
        self.octets_in = 0
        self.octets_out = 0
        self.switches_to_compressed = 0
        self.switches_to_transparent = 0


class V42bisEncoder(_Coder):
    """The encoder of one direction: ``encode(chunk)`` returns the chunk's
    octets on the line, flushed (V.42bis 7.9) so the chunk decodes on its own."""

    COUNTERS = (*_Coder.COUNTERS, "compressed_octets_in")

    def __init__(self, p1: int = P1_DEFAULT, p2: int = P2_DEFAULT) -> None:
        super().__init__(p1, p2)
        self._test_octets = 0  # the compressibility test's window
        self._test_bits = 0
        self.compressed_octets_in = 0

    def encode(self, chunk: bytes) -> bytes:
        out = bytearray()
        d = self._dict
        for octet in chunk:
            ended = d.step(octet)
            if ended:
                self._string_ended(out, ended)
                self._test(out)
            if self.transparent:
                out.append(octet)
                if octet == self._escape:
                    out.append(EID)
                    self._escape = (self._escape + ESCAPE_STEP) & 0xFF
            else:
                self.compressed_octets_in += 1
                if octet == self._escape:
                    self._escape = (self._escape + ESCAPE_STEP) & 0xFF
        self._flush(out)
        self.octets_in += len(chunk)
        self.octets_out += len(out)
        return bytes(out)

    def _put(self, out: bytearray, codeword: int) -> None:
        self._bits |= codeword << self._nbits
        self._nbits += self._dict.c2
        while self._nbits >= 8:
            out.append(self._bits & 0xFF)
            self._bits >>= 8
            self._nbits -= 8

    def _align(self, out: bytearray) -> None:
        if self._nbits:
            out.append(self._bits & 0xFF)
        self._bits = 0
        self._nbits = 0

    def _string_ended(self, out: bytearray, codeword: int) -> None:
        """A matched string is complete: send its codeword (compressed mode, 7.4)
        and count it for the compressibility test."""
        d = self._dict
        if not self.transparent:
            while codeword >= d.c3:
                self._put(out, STEPUP)
                d.c2 += 1
                d.c3 <<= 1
            self._put(out, codeword)
        self._test_bits += max(d.c2, codeword.bit_length())
        self._test_octets += d.depth[codeword]

    def _test(self, out: bytearray) -> None:
        """7.8: the compressibility test, between two strings."""
        if self._test_octets < TEST_OCTETS:
            return
        octet_bits = 8 * self._test_octets
        codeword_bits = self._test_bits
        self._test_octets = self._test_bits = 0
        if self.transparent and 16 * codeword_bits < 15 * octet_bits:
            out.append(self._escape)
            out.append(ECM)
            self.transparent = False
            self.switches_to_compressed += 1
        elif not self.transparent and codeword_bits > octet_bits:
            self._put(out, ETM)
            self._align(out)
            self.transparent = True
            self.switches_to_transparent += 1

    def _flush(self, out: bytearray) -> None:
        """7.9: send the partial string; FLUSH and padding if not on an octet boundary."""
        if self.transparent:
            return
        ended = self._dict.cut()
        if ended:
            self._string_ended(out, ended)
        if self._nbits:
            self._put(out, FLUSH)
            self._align(out)


class V42bisDecoder(_Coder):
    """The decoder of one direction: ``decode(data)`` returns the octets that
    ``data`` completes.  The input may be split anywhere; an invalid stream
    raises :class:`V42bisError` (the state is then undefined)."""

    def __init__(self, p1: int = P1_DEFAULT, p2: int = P2_DEFAULT) -> None:
        super().__init__(p1, p2)
        self._escaped = False  # the escape character came, its command code is next

    def decode(self, data: bytes) -> bytes:
        out = bytearray()
        for octet in data:
            if self.transparent:
                self._transparent_octet(out, octet)
                continue
            self._bits |= octet << self._nbits
            self._nbits += 8
            c2 = self._dict.c2
            if self._nbits >= c2:  # one octet completes at most one codeword (C2 > 8)
                codeword = self._bits & ((1 << c2) - 1)
                self._bits >>= c2
                self._nbits -= c2
                self._codeword(out, codeword)
        self.octets_in += len(data)
        self.octets_out += len(out)
        return bytes(out)

    def _transparent_octet(self, out: bytearray, octet: int) -> None:
        if self._escaped:
            self._escaped = False
            if octet == ECM:
                self._dict.cut()
                self.transparent = False
                self.switches_to_compressed += 1
                return
            if octet == RESET:
                self._dict.reset()
                self._escape = 0
                return
            if octet != EID:
                raise V42bisError(f"reserved command code {octet} after the escape character")
            octet = self._escape
            self._escape = (self._escape + ESCAPE_STEP) & 0xFF
        elif octet == self._escape:
            self._escaped = True
            return
        out.append(octet)
        self._dict.step(octet)

    def _codeword(self, out: bytearray, codeword: int) -> None:
        d = self._dict
        if codeword == ETM or codeword == FLUSH:
            self._bits = self._nbits = 0  # the rest of the octet is padding
            if codeword == ETM:
                self.transparent = True
                self.switches_to_transparent += 1
            return
        if codeword == STEPUP:
            if d.c2 >= d.n1:
                raise V42bisError(f"STEPUP beyond the largest codeword size N1 = {d.n1}")
            d.c2 += 1
            d.c3 <<= 1
            return
        if not d.in_use(codeword):
            raise V42bisError(f"codeword {codeword} names an empty dictionary entry")
        string = d.string(codeword)
        if d.pending:
            d.last_created = d.add(d.pending, string[0])
        d.pending = codeword
        out += string
        escape = self._escape
        for octet in string:
            if octet == escape:
                escape = (escape + ESCAPE_STEP) & 0xFF
        self._escape = escape
