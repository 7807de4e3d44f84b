"""Receive-side reassembly of a TCP byte stream (RFC 9293 3.10.7.4, "process
the segment text"; RFC 1122 4.2.2.20 (g): keep out-of-order segments).

Scope: the text of segments that the connection has already found acceptable
and trimmed to its window, placed by stream offset (octets since the SYN, an
unbounded integer, so no sequence-number wrap inside).  A segment at the next
expected offset is handed straight back, joined with whatever held segments
it makes contiguous; a segment ahead of it waits until the hole before it is
filled.  Octets the stream already has are dropped, never delivered twice.
The FIN's offset is remembered: nothing beyond it is delivered and once the
stream reaches it :attr:`ReassemblyQueue.at_fin` is true.

Cost: a segment held costs one heap push and one dict store (O(log n) for n
held); each held segment is popped once when the stream reaches it; a segment
that adds nothing new (an exact or shorter duplicate of one held at the same
offset, or octets already delivered) is dropped at once; what becomes
contiguous is joined once.  No list is scanned or re-sorted per segment.
"""

from __future__ import annotations

from heapq import heappop, heappush

__all__ = ["ReassemblyQueue"]


class ReassemblyQueue:
    """A byte stream put back together from segments in any order.

    ``next``: the offset of the first octet not yet delivered (RCV.NXT as a
    stream offset).  ``fin``: the stream offset of the FIN, once one was seen.
    """

    __slots__ = ("next", "fin", "_starts", "_blocks")

    def __init__(self, start: int = 0) -> None:
        self.next = start
        self.fin: int | None = None
        self._starts: list[int] = []  # heap of the offsets of held segments
        self._blocks: dict[int, bytes] = {}  # offset -> the longest text held there

    def __len__(self) -> int:
        """How many segments are held out of order."""
        return len(self._blocks)

    @property
    def held_octets(self) -> int:
        """Octets held out of order (overlapping octets counted once per segment)."""
        return sum(map(len, self._blocks.values()))

    @property
    def pending(self) -> bool:
        """Something waits beyond :attr:`next`: held segments, or a FIN not yet reached."""
        return bool(self._blocks) or self.fin is not None

    @property
    def at_fin(self) -> bool:
        """The stream has reached the FIN: every octet before it was delivered."""
        return self.fin is not None and self.next == self.fin

    def add(self, offset: int, data: bytes, fin: bool = False) -> bytes:
        """Take one segment's text at stream ``offset`` (``fin``: the FIN follows it).

        Returns the octets that now continue the stream at :attr:`next` (b""
        when the segment is held or adds nothing) and advances :attr:`next`.
        """
        end = offset + len(data)
        if fin and end >= self.next and (self.fin is None or end < self.fin):
            self.fin = end
        nxt = self.next
        if offset > nxt:
            if self.fin is None or offset < self.fin:
                held = self._blocks.get(offset)
                if held is None:
                    heappush(self._starts, offset)
                    self._blocks[offset] = data
                elif len(held) < len(data):
                    self._blocks[offset] = data
            return b""
        if end <= nxt:
            if self.fin == nxt:
                self.clear()
            return b""
        if offset < nxt:
            data = data[nxt - offset :]
        if not self._starts and self.fin is None:
            self.next = end
            return data
        return self._advance(data, end)

    def _advance(self, data: bytes, end: int) -> bytes:
        """Deliver ``data`` (which ends at ``end``) and every held segment it reaches."""
        pieces = [data]
        starts, blocks = self._starts, self._blocks
        while starts and starts[0] <= end:
            start = heappop(starts)
            block = blocks.pop(start)
            stop = start + len(block)
            if stop > end:
                pieces.append(block[end - start :])
                end = stop
        out = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self.fin is not None and end >= self.fin:
            out = out[: len(out) - (end - self.fin)]
            end = self.fin
            self.clear()
        self.next = end
        return out

    def clear(self) -> None:
        """Forget every held segment (the FIN was reached, or the connection is gone)."""
        self._starts.clear()
        self._blocks.clear()
