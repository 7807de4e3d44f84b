"""TCP's retransmission timeout (RFC 6298): round-trip time estimation, Karn's
rule and exponential backoff.

Scope:

- SRTT and RTTVAR from one timed segment at a time (RFC 6298 2.2, 2.3: alpha
  1/8, beta 1/4, K = 4); RTO = SRTT + max(G, K*RTTVAR), held between the
  minimum and maximum RTO (2.4, 2.5).  G is the clock granularity.
- Karn's rule (RFC 6298 3): a segment that was retransmitted, or timed while
  a retransmission was out, gives no sample (:meth:`RttEstimator.forget`).
- Exponential backoff on expiry (5.5), and the persist timer's backed-off
  interval, which uses the same RTO.
- After a handshake whose SYN was retransmitted and gave no sample, the RTO is
  at least 3 s (5.7).

When the RTO timer runs, which segment it guards and how many expiries the
connection tolerates is the connection's business (:mod:`dialsim.proto.tcp`).
"""

from __future__ import annotations

from dialsim.proto.tcp_segment import seq_lt

__all__ = ["RttEstimator"]

RTO_AFTER_SYN_RETRANSMIT = 3.0  # RFC 6298 5.7


class RttEstimator:
    """SRTT, RTTVAR and RTO of one connection (RFC 6298).

    ``granularity``: G, the clock granularity in seconds.  A host with a
    millisecond clock has G = 0.001; a 4.4BSD stack of the 1990s ran its
    retransmit timer from ``tcp_slowtimo`` every 500 ms, G = 0.5.
    """

    __slots__ = ("srtt", "rttvar", "rto", "min_rto", "max_rto", "granularity", "_seq", "_sent_at")

    def __init__(self, initial_rto: float, min_rto: float, max_rto: float, granularity: float) -> None:
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = initial_rto
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.granularity = granularity
        self._seq: int | None = None  # the timed segment is acknowledged once ACK > this
        self._sent_at = 0.0

    @property
    def timing(self) -> bool:
        """A segment is being timed."""
        return self._seq is not None

    def time(self, seq: int, now: float) -> None:
        """Time the segment starting at ``seq``, sent at ``now`` (if none is timed yet)."""
        if self._seq is None:
            self._seq = seq
            self._sent_at = now

    def forget(self) -> None:
        """Karn's rule: the timed segment (if any) gives no sample."""
        self._seq = None

    def on_ack(self, ack: int, now: float) -> None:
        """An ACK of everything before ``ack`` arrived: a sample if it covers the timed segment."""
        if self._seq is None or not seq_lt(self._seq, ack):
            return
        r = now - self._sent_at
        if r < 0.0:
            r = 0.0
        self._seq = None
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        rto = self.srtt + max(self.granularity, 4 * self.rttvar)
        self.rto = min(max(rto, self.min_rto), self.max_rto)

    def back_off(self) -> None:
        """The retransmission timer expired: double the RTO (up to the maximum), no sample."""
        self.rto = min(self.rto * 2, self.max_rto)
        self._seq = None

    def backed_off(self, times: int) -> float:
        """The RTO doubled ``times`` times, capped at the maximum (the persist interval)."""
        return min(self.rto * (2**times), self.max_rto)

    def syn_was_retransmitted(self) -> None:
        """The handshake completed after a retransmitted SYN (RFC 6298 5.7)."""
        if self.srtt is None:
            self.rto = max(self.rto, RTO_AFTER_SYN_RETRANSMIT)
