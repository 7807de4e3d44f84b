"""TCP congestion control: RFC 5681 and RFC 6582 (NewReno).

Scope:

- The initial window by SMSS (RFC 5681 3.1: 2, 3 or 4 segments), slow start
  while cwnd < ssthresh (cwnd grows by min(acked, SMSS) per ACK) and
  congestion avoidance above it (about one SMSS per round trip).
- Fast retransmit on the third duplicate ACK (RFC 5681 3.2) and NewReno fast
  recovery (RFC 6582 3.2): ssthresh = max(FlightSize/2, 2*SMSS), cwnd inflated
  by one SMSS per further duplicate ACK, a partial ACK retransmits the next
  hole and deflates cwnd, a full ACK (covering ``recover``) ends recovery.
  A new recovery starts only for duplicate ACKs beyond ``recover`` (RFC 6582
  4.1, the careful variant).
- After a retransmission timeout: ssthresh = max(FlightSize/2, 2*SMSS), cwnd =
  one SMSS (the loss window), recovery abandoned.

What counts as a duplicate ACK (RFC 5681 2: no data, same window, data
outstanding) is judged by the connection; this class only keeps the window.
"""

from __future__ import annotations

from dialsim.proto.tcp_segment import seq_le

__all__ = ["NewReno", "initial_window"]

INITIAL_SSTHRESH = 0xFFFF  # RFC 5681 3.1: "arbitrarily high" -- the largest unscaled window


def initial_window(smss: int) -> int:
    """RFC 5681 3.1: IW by SMSS."""
    return 2 * smss if smss > 2190 else 3 * smss if smss > 1095 else 4 * smss


class NewReno:
    """cwnd and ssthresh of one connection, and its fast-recovery state."""

    __slots__ = ("cwnd", "ssthresh", "dupacks", "in_recovery", "recover")

    def __init__(self, iss: int) -> None:
        self.cwnd = 0
        self.ssthresh = INITIAL_SSTHRESH
        self.dupacks = 0
        self.in_recovery = False
        self.recover = iss  # SND.MAX when the last recovery (or timeout) began

    def start(self, smss: int) -> None:
        """The handshake fixed SMSS: open the initial window."""
        self.cwnd = initial_window(smss)
        self.ssthresh = INITIAL_SSTHRESH

    def on_ack(self, ack: int, acked: int, flight: int, smss: int) -> bool:
        """``acked`` new octets were acknowledged (``flight``: what is still out).

        True when this is a partial ACK in fast recovery: the segment at the
        new SND.UNA is to be retransmitted now (RFC 6582 3.2 step 3).
        """
        self.dupacks = 0
        if self.in_recovery:
            if seq_le(self.recover, ack):  # full ACK: leave fast recovery
                self.cwnd = min(self.ssthresh, max(flight, smss) + smss)
                self.in_recovery = False
                return False
            self.cwnd = max(self.cwnd - acked + smss, smss)
            return True
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, smss)
        else:
            self.cwnd += max(1, smss * smss // self.cwnd)
        return False

    def on_duplicate_ack(self, ack: int, flight: int, smss: int, snd_max: int) -> bool:
        """A duplicate ACK; True when it is the third and fast retransmit begins."""
        self.dupacks += 1
        if self.in_recovery:
            self.cwnd += smss
            return False
        if self.dupacks == 3 and seq_le(self.recover, ack):
            self.ssthresh = max(flight // 2, 2 * smss)
            self.cwnd = self.ssthresh + 3 * smss
            self.recover = snd_max
            self.in_recovery = True
            return True
        return False

    def on_timeout(self, flight: int, smss: int, snd_max: int) -> None:
        """The retransmission timer expired (RFC 5681 3.1, equation 4)."""
        self.ssthresh = max(flight // 2, 2 * smss)
        self.cwnd = smss
        self.in_recovery = False
        self.dupacks = 0
        self.recover = snd_max
