"""IPCP options (RFC 1332) with RFC 1877 name server addresses.

Scope: the option policy the generic RFC 1661 automaton
(:class:`dialsim.proto.ppp_fsm.NegotiationAutomaton`) uses for IPCP:

- IP-Address (3): the subscriber asks for 0.0.0.0 (or its configured address)
  and takes the address the ISP Naks back; the ISP Naks anything but the
  address it assigned from its pool;
- IP-Compression-Protocol (2): Van Jacobson (0x002D) with Max-Slot-Id and
  Comp-Slot-Id (RFC 1332 4.2); any other form is Nak'd with ours, or Rejected
  when VJ is off;
- Primary (129) / Secondary (131) DNS Server Address (RFC 1877): the subscriber
  asks with 0.0.0.0 and takes the Nak'd values; the ISP Naks with its servers
  or Rejects if it has none.  NBNS (130/132) and the old IP-Addresses option (1)
  are Rejected.
"""

from __future__ import annotations

from collections.abc import Iterator

from dialsim.proto.ipv4 import ip_to_bytes, ip_to_str
from dialsim.proto.ppp_fsm import Option, OptionPolicy

OPT_IP_ADDRESSES = 1
OPT_IP_COMPRESSION = 2
OPT_IP_ADDRESS = 3
OPT_PRIMARY_DNS = 129
OPT_SECONDARY_DNS = 131
PROTO_VJ = 0x002D

_ZERO = b"\x00\x00\x00\x00"


class IpcpPolicy(OptionPolicy):
    """IPCP options for one end.

    ``role``: "subscriber" or "isp".  ``local_ip``: our address (subscriber:
    the address to ask for, None for 0.0.0.0).  ``peer_ip_pool`` (isp): a str,
    a sequence (its first address), or an iterator (drawn once per link when
    first needed); subscriber: the ISP's address, offered in a Nak when the ISP
    asks for 0.0.0.0 (None: reject that request).  ``dns``: isp: the addresses offered; subscriber: a true
    value means "ask for DNS servers".  ``vj_slots``: our decompressor's slots.

    After negotiation: ``got_address``, ``got_dns``, ``got_vj`` (ours acked by
    the peer: VJ is what we receive) and ``peer_address``, ``peer_vj`` =
    (max_slot_id, comp_slot_id) or None (what the peer receives, so how we send).
    """

    def __init__(
        self,
        role: str,
        *,
        local_ip: str | None = None,
        peer_ip_pool=None,
        dns: tuple[str, ...] | None = None,
        vj: bool = True,
        vj_slots: int = 16,
    ) -> None:
        self.role = role
        self.local_ip = local_ip
        self._pool = peer_ip_pool
        self.assigned: str | None = None
        self.dns = tuple(dns) if dns else ()
        self.vj = vj
        self.vj_slots = vj_slots
        self.peer_address: str | None = None
        self.peer_vj: tuple[int, int] | None = None
        self.reset()

    def _assigned_bytes(self) -> bytes | None:
        if self.assigned is None and self._pool is not None:
            pool = self._pool
            if isinstance(pool, str):
                self.assigned = pool
            elif isinstance(pool, Iterator):
                self.assigned = next(pool, None)
            else:
                self.assigned = next(iter(pool), None)
        return ip_to_bytes(self.assigned) if self.assigned else None

    def reset(self) -> None:
        if self.role == "subscriber":
            self.want_address: bytes | None = ip_to_bytes(self.local_ip) if self.local_ip else _ZERO
            self.want_dns: list[bytes | None] = [_ZERO, _ZERO] if self.dns else [None, None]
        else:
            self.want_address = ip_to_bytes(self.local_ip) if self.local_ip else None
            self.want_dns = [None, None]
        self.want_vj: tuple[int, int] | None = (self.vj_slots - 1, 1) if self.vj else None
        self.got_address: str | None = None
        self.got_dns: list[str | None] = [None, None]
        self.got_vj: tuple[int, int] | None = None

    def request_options(self) -> list[Option]:
        opts: list[Option] = []
        if self.want_vj is not None:
            opts.append((OPT_IP_COMPRESSION, PROTO_VJ.to_bytes(2, "big") + bytes(self.want_vj)))
        if self.want_address is not None:
            opts.append((OPT_IP_ADDRESS, self.want_address))
        for t, v in zip((OPT_PRIMARY_DNS, OPT_SECONDARY_DNS), self.want_dns, strict=True):
            if v is not None:
                opts.append((t, v))
        return opts

    def check_request(self, options: list[Option]) -> tuple[list[Option], list[Option]]:
        naks: list[Option] = []
        rejects: list[Option] = []
        for t, d in options:
            if t == OPT_IP_ADDRESS and len(d) == 4:
                if self.role == "isp":
                    want = self._assigned_bytes()
                    if want is None:
                        if d == _ZERO:
                            rejects.append((t, d))
                    elif d != want:
                        naks.append((t, want))
                elif d == _ZERO:
                    # The ISP asks us for its address (slirp does).  Like pppd's
                    # "local:remote" option: Nak with the address we were told the
                    # peer has; without one, reject (pppd too).  A rejected slirp
                    # closes IPCP at once ("could not determine local address").
                    want = self._assigned_bytes()
                    if want is None:
                        rejects.append((t, d))
                    else:
                        naks.append((t, want))
            elif t == OPT_IP_COMPRESSION and len(d) >= 2:
                if not self.vj:
                    rejects.append((t, d))
                elif not (len(d) == 4 and d[:2] == PROTO_VJ.to_bytes(2, "big") and d[3] <= 1):
                    naks.append((t, PROTO_VJ.to_bytes(2, "big") + bytes([self.vj_slots - 1, 1])))
            elif t in (OPT_PRIMARY_DNS, OPT_SECONDARY_DNS) and len(d) == 4:
                i = 0 if t == OPT_PRIMARY_DNS else 1
                if self.role != "isp" or len(self.dns) <= i:
                    rejects.append((t, d))
                elif d != ip_to_bytes(self.dns[i]):
                    naks.append((t, ip_to_bytes(self.dns[i])))
            else:
                rejects.append((t, d))
        return naks, rejects

    def peer_acked(self, options: list[Option]) -> None:
        self.peer_address = None
        self.peer_vj = None
        for t, d in options:
            if t == OPT_IP_ADDRESS:
                self.peer_address = ip_to_str(bytes(d))
            elif t == OPT_IP_COMPRESSION:
                self.peer_vj = (d[2], d[3])

    def on_ack(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_IP_ADDRESS:
                self.got_address = ip_to_str(bytes(d))
            elif t == OPT_IP_COMPRESSION:
                self.got_vj = (d[2], d[3])
            elif t == OPT_PRIMARY_DNS:
                self.got_dns[0] = ip_to_str(bytes(d))
            elif t == OPT_SECONDARY_DNS:
                self.got_dns[1] = ip_to_str(bytes(d))

    def on_nak(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_IP_ADDRESS and len(d) == 4 and self.want_address is not None:
                self.want_address = bytes(d)
            elif t == OPT_IP_COMPRESSION and self.want_vj is not None:
                if len(d) == 4 and d[:2] == PROTO_VJ.to_bytes(2, "big"):
                    self.want_vj = (min(d[2], self.vj_slots - 1), d[3] & 1)
                else:
                    self.want_vj = None
            elif t in (OPT_PRIMARY_DNS, OPT_SECONDARY_DNS) and len(d) == 4:
                i = 0 if t == OPT_PRIMARY_DNS else 1
                if self.want_dns[i] is not None:
                    self.want_dns[i] = bytes(d)

    def on_reject(self, options: list[Option]) -> None:
        for t, _d in options:
            if t == OPT_IP_ADDRESS:
                self.want_address = None
            elif t == OPT_IP_COMPRESSION:
                self.want_vj = None
            elif t == OPT_PRIMARY_DNS:
                self.want_dns[0] = None
            elif t == OPT_SECONDARY_DNS:
                self.want_dns[1] = None


__all__ = ["IpcpPolicy"]
