"""The Link Control Protocol's options (RFC 1661 section 6, RFC 1570 2.1) and PPP's protocol numbers.

Scope: :class:`LcpPolicy`, the option policy the RFC 1661 automaton
(:class:`dialsim.proto.ppp_fsm.NegotiationAutomaton`) uses for LCP:
Maximum-Receive-Unit, Async-Control-Character-Map (RFC 1662 7.1),
Authentication-Protocol (PAP 0xC023, CHAP 0xC223 with MD5 algorithm 5),
Magic-Number with loop-back detection (6.4), Protocol-Field-Compression,
Address-and-Control-Field-Compression and FCS-Alternatives (RFC 1570 2.1:
the 16- or 32-bit FCS; the Null FCS is not offered).
"""

from __future__ import annotations

import random

from dialsim.proto.ppp_fsm import Option, OptionPolicy

PROTO_LCP = 0xC021
PROTO_PAP = 0xC023
PROTO_CHAP = 0xC223
PROTO_IPCP = 0x8021
PROTO_IP = 0x0021
PROTO_VJ_COMP = 0x002D
PROTO_VJ_UNCOMP = 0x002F

# LCP option types (RFC 1661 6, RFC 1570 2.1)
OPT_MRU = 1
OPT_ACCM = 2
OPT_AUTH = 3
OPT_MAGIC = 5
OPT_PFC = 7
OPT_ACFC = 8
OPT_FCS_ALTERNATIVES = 9

CHAP_MD5 = 5

# FCS-Alternatives bits (RFC 1570 2.1)
FCS_NULL = 0x01
FCS_16 = 0x02
FCS_32 = 0x04


def _u16(d: bytes) -> int:
    return int.from_bytes(d[:2], "big")


def _u32(d: bytes) -> int:
    return int.from_bytes(d[:4], "big")


def _fcs_size(d: bytes) -> int:
    """The FCS the sender of an acked FCS-Alternatives option gets: 32 bits if allowed."""
    return 32 if d[:1] and d[0] & FCS_32 else 16


AUTH_OPTION = {"pap": PROTO_PAP.to_bytes(2, "big"), "chap": PROTO_CHAP.to_bytes(2, "big") + bytes([CHAP_MD5])}


def auth_name(data: bytes) -> str | None:
    """'pap' / 'chap' (MD5 only) for an Authentication-Protocol option's data, else None."""
    if data == AUTH_OPTION["pap"]:
        return "pap"
    if data == AUTH_OPTION["chap"]:
        return "chap"
    return None


class LcpPolicy(OptionPolicy):
    """LCP options for one link end.

    ``demand_auth``: protocol we require of the peer ('pap' | 'chap' | None);
    ``accept_auth``: protocol we agree to authenticate ourselves with (or None);
    ``alt_auth``: protocols we would also demand if the peer Naks ours.
    ``fcs32``: ask the peer to send a 32-bit FCS (RFC 1570 FCS-Alternatives);
    a peer's request for one (or for the 16-bit FCS) is acked either way.
    After negotiation: ``peer_*`` are the peer's options we acked (they govern
    what we send), ``got_*`` ours the peer acked (what we receive);
    ``peer_fcs`` and ``got_fcs`` are FCS sizes in bits.
    """

    MIN_MRU = 64

    def __init__(
        self,
        rng: random.Random,
        *,
        mru: int = 1500,
        accm: int | None = 0,
        pfc: bool = True,
        acfc: bool = True,
        magic: bool = True,
        demand_auth: str | None = None,
        accept_auth: str | None = None,
        alt_auth: tuple[str, ...] = (),
        fcs32: bool = False,
    ) -> None:
        self.rng = rng
        self.fcs32 = fcs32
        self.mru = mru
        self.accm = accm
        self.pfc = pfc
        self.acfc = acfc
        self.use_magic = magic
        self.demand_auth = demand_auth
        self.accept_auth = accept_auth
        self.alt_auth = alt_auth
        self.loops_suspected = 0
        self.auth_refused = False
        self.magic = 0
        self.peer_clear()
        self.reset()

    def _new_magic(self) -> int:
        m = 0
        while m == 0 or m == self.magic:
            m = self.rng.getrandbits(32)
        return m

    def reset(self) -> None:
        self.want_mru: int | None = self.mru
        self.want_accm: int | None = self.accm
        self.want_auth: str | None = self.demand_auth
        self.want_magic = self.use_magic
        if self.use_magic:
            self.magic = self._new_magic()
        self.want_pfc = self.pfc
        self.want_acfc = self.acfc
        self.want_fcs: int | None = FCS_32 if self.fcs32 else None
        self.auth_refused = False
        self.got_mru = 1500
        self.got_accm = 0xFFFFFFFF
        self.got_auth: str | None = None
        self.got_magic = 0
        self.got_pfc = False
        self.got_acfc = False
        self.got_fcs = 16

    @property
    def local_magic(self) -> int:
        """Our Magic-Number if the peer acked it, else zero (for Echo and Discard packets)."""
        return self.got_magic

    def peer_clear(self) -> None:
        self.peer_mru = 1500
        self.peer_accm = 0xFFFFFFFF
        self.peer_auth: str | None = None
        self.peer_magic = 0
        self.peer_pfc = False
        self.peer_acfc = False
        self.peer_fcs = 16

    def request_options(self) -> list[Option]:
        opts: list[Option] = []
        if self.want_mru is not None:
            opts.append((OPT_MRU, self.want_mru.to_bytes(2, "big")))
        if self.want_accm is not None:
            opts.append((OPT_ACCM, self.want_accm.to_bytes(4, "big")))
        if self.want_auth is not None:
            opts.append((OPT_AUTH, AUTH_OPTION[self.want_auth]))
        if self.want_magic:
            opts.append((OPT_MAGIC, self.magic.to_bytes(4, "big")))
        if self.want_pfc:
            opts.append((OPT_PFC, b""))
        if self.want_acfc:
            opts.append((OPT_ACFC, b""))
        if self.want_fcs is not None:
            opts.append((OPT_FCS_ALTERNATIVES, bytes([self.want_fcs])))
        return opts

    def check_request(self, options: list[Option]) -> tuple[list[Option], list[Option]]:
        naks: list[Option] = []
        rejects: list[Option] = []
        for t, d in options:
            if t == OPT_MRU and len(d) == 2:
                if _u16(d) < self.MIN_MRU:
                    naks.append((t, self.MIN_MRU.to_bytes(2, "big")))
            elif t == OPT_ACCM and len(d) == 4:
                pass
            elif t == OPT_AUTH and len(d) >= 2:
                name = auth_name(d)
                if self.accept_auth is None:
                    rejects.append((t, d))
                elif name != self.accept_auth:
                    naks.append((t, AUTH_OPTION[self.accept_auth]))
            elif t == OPT_MAGIC and len(d) == 4:
                v = _u32(d)
                if v == 0:
                    naks.append((t, self._new_magic().to_bytes(4, "big")))
                elif self.want_magic and v == self.magic:
                    # Possibly our own request looped back (RFC 1661 6.4).
                    self.loops_suspected += 1
                    naks.append((t, self._new_magic().to_bytes(4, "big")))
            elif t == OPT_PFC and not d:
                if not self.pfc:
                    rejects.append((t, d))
            elif t == OPT_ACFC and not d:
                if not self.acfc:
                    rejects.append((t, d))
            elif t == OPT_FCS_ALTERNATIVES and len(d) == 1:
                if not d[0] & (FCS_16 | FCS_32):  # the Null FCS alone: we always send one
                    naks.append((t, bytes([FCS_16 | FCS_32])))
            else:
                rejects.append((t, d))
        return naks, rejects

    def peer_acked(self, options: list[Option]) -> None:
        self.peer_clear()
        for t, d in options:
            if t == OPT_MRU:
                self.peer_mru = _u16(d)
            elif t == OPT_ACCM:
                self.peer_accm = _u32(d)
            elif t == OPT_AUTH:
                self.peer_auth = auth_name(d)
            elif t == OPT_MAGIC:
                self.peer_magic = _u32(d)
            elif t == OPT_PFC:
                self.peer_pfc = True
            elif t == OPT_ACFC:
                self.peer_acfc = True
            elif t == OPT_FCS_ALTERNATIVES:
                self.peer_fcs = _fcs_size(d)

    def on_ack(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_MRU:
                self.got_mru = _u16(d)
            elif t == OPT_ACCM:
                self.got_accm = _u32(d)
            elif t == OPT_AUTH:
                self.got_auth = auth_name(d)
            elif t == OPT_MAGIC:
                self.got_magic = _u32(d)
            elif t == OPT_PFC:
                self.got_pfc = True
            elif t == OPT_ACFC:
                self.got_acfc = True
            elif t == OPT_FCS_ALTERNATIVES:
                self.got_fcs = _fcs_size(d)

    def on_nak(self, options: list[Option]) -> None:
        for t, d in options:
            if t == OPT_MRU and len(d) == 2 and self.want_mru is not None:
                self.want_mru = max(self.MIN_MRU, _u16(d))
            elif t == OPT_ACCM and len(d) == 4 and self.want_accm is not None:
                self.want_accm |= _u32(d)
            elif t == OPT_AUTH and self.want_auth is not None:
                name = auth_name(d)
                if name is not None and (name == self.demand_auth or name in self.alt_auth):
                    self.want_auth = name
                else:
                    self.auth_refused = True
            elif t == OPT_MAGIC and self.want_magic:
                self.magic = self._new_magic()
            elif t == OPT_FCS_ALTERNATIVES and self.want_fcs is not None:
                if not (len(d) == 1 and d[0] & FCS_32):
                    self.want_fcs = None  # the peer will not send a 32-bit FCS: keep the default

    def on_reject(self, options: list[Option]) -> None:
        for t, _d in options:
            if t == OPT_MRU:
                self.want_mru = None
            elif t == OPT_ACCM:
                self.want_accm = None
            elif t == OPT_AUTH and self.want_auth is not None:
                self.want_auth = None
                self.auth_refused = True
            elif t == OPT_MAGIC:
                self.want_magic = False
            elif t == OPT_PFC:
                self.want_pfc = False
            elif t == OPT_ACFC:
                self.want_acfc = False
            elif t == OPT_FCS_ALTERNATIVES:
                self.want_fcs = None


__all__ = [
    "AUTH_OPTION",
    "FCS_16",
    "FCS_32",
    "FCS_NULL",
    "LcpPolicy",
    "OPT_FCS_ALTERNATIVES",
    "PROTO_CHAP",
    "PROTO_IP",
    "PROTO_IPCP",
    "PROTO_LCP",
    "PROTO_PAP",
    "PROTO_VJ_COMP",
    "PROTO_VJ_UNCOMP",
    "auth_name",
]
