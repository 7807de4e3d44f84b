"""The scenario file's schema: what a dial-up experiment states, validated with pydantic v2.

Every section forbids unknown keys (``extra="forbid"``), so a typo is an error,
not a silently ignored setting.  Values arrive in human units and leave as
seconds, octets and bits per second (:mod:`dialsim.scenario.units`).

Cross-field rules live next to the field they judge (a ``field_validator`` that
reads the earlier fields from ``info.data``), so an error's location is the
offending key itself and the loader can name its line.  Field order therefore
matters: a field may only look at fields declared before it.

To extend the schema, add a field (with a default, so old files stay valid) to
the section it belongs to, or a new :class:`Section` subclass; document it in
``docs/scenarios.md``.  Nothing here imports simpy or protocol machines.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
)
from pydantic_core.core_schema import ValidationInfo

from dialsim.link import profiles as _link_profiles
from dialsim.scenario.units import Duration, EventRate, Rate, Size

__all__ = [
    "PROFILES",
    "PROFILE_CONNECT_RATES",
    "CarrierLoss",
    "BurstNoise",
    "Calls",
    "CallWaiting",
    "ChatStep",
    "DialSettings",
    "Incoming",
    "Isp",
    "Lapm",
    "Link",
    "Maildrop",
    "Outbox",
    "Population",
    "PppOptions",
    "Redial",
    "Retrains",
    "Scenario",
    "Section",
    "SizeDistribution",
    "Strategy",
    "Subscriber",
    "Tariff",
]

PROFILES = ("v22bis", "v32bis", "v34", "v34_33600", "v90")

# profile -> (lowest, highest) connect rate in bit/s, from the link model's profiles
# (scenario/ sits above link/ in the layering, so it may read them).
PROFILE_CONNECT_RATES: dict[str, tuple[float, float]] = dict(_link_profiles.CONNECT_RATE_LIMITS)
"""Hook for the link model's limits: profile -> (lowest, highest) connect rate in
bit/s.  A profile missing here is not checked.  Filled by whoever owns the modem
profiles (e.g. ``{"v32bis": (4800, 14400)}``); see :meth:`Link._rate_within_profile`."""


def _parse_accm(value: object) -> int:
    hint = 'use a 32-bit map as an integer or a hex string (e.g. 0x00000000 or "0x000a0000")'
    if isinstance(value, bool):
        raise ValueError(f"bad accm {value!r}; {hint}")
    if isinstance(value, str):
        try:
            value = int(value.strip(), 16 if value.strip().lower().startswith("0x") else 10)
        except ValueError:
            raise ValueError(f"bad accm {value!r}; {hint}") from None
    if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
        return value
    raise ValueError(f"bad accm {value!r}; {hint}")


def _text(value: object) -> object:
    """YAML reads an unquoted 5550123 as a number; a phone number is text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _ipv4(v: str) -> str:
    try:
        return str(ipaddress.IPv4Address(v))
    except ValueError:
        raise ValueError(f"bad IPv4 address {v!r}; e.g. 10.0.2.15") from None


Accm = Annotated[int, BeforeValidator(_parse_accm)]
IPv4Text = Annotated[str, AfterValidator(_ipv4)]
Text = Annotated[str, BeforeValidator(_text)]


class Section(BaseModel):
    """Base of every scenario section: unknown keys are errors; values re-validate on assignment.

    ``defer_build``: pydantic builds a model's validator when it is first used,
    not when the class is defined; a run validates one Scenario, so the
    sections' validators are built once, inside the Scenario's, instead of once
    each at import as well (about 30 ms of every ``dialsim`` command).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class PppOptions(Section):
    """What the subscriber's PPP asks for (RFC 1661 LCP, RFC 1662 ACCM, RFC 1332 IPCP, RFC 1144 VJ)."""

    auth: Literal["pap", "chap", "none"] = "pap"
    accm: Accm = 0x00000000
    mru: int = Field(1500, ge=128, le=16384)
    vj: bool = True
    fcs32: bool = False  # RFC 1570: ask for the 32-bit FCS (both ends)


class ChatStep(Section):
    """One expect/send pair of the login chat on the ISP's terminal server."""

    expect: str
    send: str
    timeout: Duration = Field(30.0, gt=0)


class CarrierLoss(Section):
    at: list[Duration] = Field(default_factory=list)
    mean_time_between: Duration | None = Field(None, gt=0)
    while_dialing: bool = False  # an ``at`` time during a dial attempt ends it (no carrier)


class BurstNoise(Section):
    """Bursts of noise on the line: a two-state Gilbert-Elliott channel.  Between
    bursts the line has ``link.bit_error_rate``; in a burst ``bit_error_rate``."""

    mean_time_between: Duration = Field(gt=0)
    mean_length: Duration = Field(gt=0)
    bit_error_rate: float = Field(gt=0.0, le=0.5)


class Retrains(Section):
    """Retrains during a call: the data pauses, then the rate steps down or up."""

    mean_time_between: Duration = Field(gt=0)
    duration: list[Duration] = Field(default_factory=lambda: [2.0, 5.0], min_length=2,
                                     max_length=2)
    fallback_probability: float = Field(0.7, ge=0.0, le=1.0)
    failure_probability: float = Field(0.0, ge=0.0, le=1.0)

    @field_validator("duration")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if v[0] > v[1]:
            raise ValueError(f"bad range {v}; give [shortest, longest]")
        return v


class CallWaiting(Section):
    """Incoming calls while online: their tone drops the carrier, unless the dial
    string starts with ``*70,`` (``1170,`` on pulse lines), which turns call
    waiting off for the call."""

    rate: EventRate


class Lapm(Section):
    """V.42 LAPM parameters of both modems."""

    n400: int = Field(10, ge=1, le=255)  # retransmissions before giving up (Hayes S70)
    t401: Duration = Field(4.0, gt=0)  # acknowledgement timer


class Tariff(Section):
    """What a call costs, in any currency unit: per answered call plus per
    started ``increment`` of call time (answer to hang-up), priced per minute."""

    per_call: float = Field(0.0, ge=0.0)
    per_minute: float = Field(0.0, ge=0.0)
    increment: Duration = Field(60.0, gt=0)


class DialSettings(Section):
    """Call progress of a dial (V.250 S-registers of the subscriber's modem, the ISP's
    answering modem, and the phone network); defaults are the link model's."""

    dial_tone_wait: Duration = Field(0.75, ge=0.0)  # dial tone qualified (X4); S6 when blind
    dtmf_tone: Duration = Field(0.095, gt=0.0)  # S11
    carrier_wait: Duration = Field(50.0, gt=0.0)  # S7
    answer_after_rings: int = Field(1, ge=1, le=20)  # S0 of the ISP's modem
    post_dial_delay: list[Duration] = Field(default_factory=lambda: [1.0, 3.0],
                                           min_length=2, max_length=2)

    @field_validator("post_dial_delay")
    @classmethod
    def _ordered(cls, v: list[float]) -> list[float]:
        if v[0] > v[1] or v[0] < 0:
            raise ValueError(f"bad range {v}; give [shortest, longest], both >= 0")
        return v


class Link(Section):
    """The modems and the phone line between them (ITU-T V.22bis .. V.90, V.42, V.42bis)."""

    profile: Literal["v22bis", "v32bis", "v34", "v34_33600", "v90"] = "v34"
    connect_rate: Rate | None = None
    error_correction: bool = True
    compression: bool | None = Field(None, validate_default=True)
    serial_rate: Rate = 115200.0
    isp_serial_rate: Rate | None = None
    bit_error_rate: float = Field(0.0, ge=0.0, le=1e-2)
    busy_probability: float = Field(0.0, ge=0.0, le=1.0)
    no_answer_probability: float = Field(0.0, ge=0.0, le=1.0)
    phone_number: Text = "555-0123"
    mtu: int = Field(1006, ge=68, le=65535)
    carrier_loss: CarrierLoss | None = None
    dial: DialSettings = Field(default_factory=DialSettings)
    handshake: Duration | None = Field(None, ge=0.0)  # None: drawn from the profile
    burst_noise: BurstNoise | None = None
    retrain: Retrains | None = None
    call_waiting: CallWaiting | None = None
    lapm: Lapm = Field(default_factory=Lapm)
    tariff: Tariff = Field(default_factory=Tariff)

    @field_validator("connect_rate")
    @classmethod
    def _rate_within_profile(cls, v: float | None, info: ValidationInfo) -> float | None:
        profile = info.data.get("profile")
        limits = PROFILE_CONNECT_RATES.get(profile) if profile else None
        if v is not None and limits is not None and not (limits[0] <= v <= limits[1]):
            raise ValueError(
                f"{v:g} bit/s is out of reach for profile {profile}; "
                f"use {limits[0]:g} .. {limits[1]:g} bit/s or omit connect_rate"
            )
        return v

    @field_validator("compression")
    @classmethod
    def _compression_needs_error_correction(cls, v: bool | None, info: ValidationInfo) -> bool:
        ec = info.data.get("error_correction", True)
        if v is None:  # default: V.42bis whenever V.42 is on
            return bool(ec)
        if v and not ec:
            raise ValueError(
                "compression (V.42bis) needs error_correction (V.42); "
                "set error_correction: true or compression: false"
            )
        return v


class Strategy(Section):
    """How the subscriber's POP3 client retrieves (RFC 1939), and when its dialer hangs up."""

    mode: Literal["delete", "keep"] = "delete"
    use_uidl: bool = True
    pipelining: bool = False
    apop: bool = False
    batch: int = Field(0, ge=0)  # QUIT and reconnect after this many messages (0: all at once)
    size_limit: Size | None = None
    over_limit: Literal["skip", "headers"] = "skip"
    header_lines: int = Field(0, ge=0)
    order: Literal["server", "smallest_first"] = "server"
    leave_for: Duration | None = Field(None, gt=0)
    hangup: Literal["when_done", "idle"] = "when_done"
    idle_hangup: Duration = Field(600.0, gt=0)
    check_every: Duration | None = Field(None, gt=0)

    @field_validator("batch")
    @classmethod
    def _batch_needs_progress(cls, v: int, info: ValidationInfo) -> int:
        if v and info.data.get("mode") == "keep" and info.data.get("use_uidl") is False:
            raise ValueError("batch commit in keep mode needs use_uidl: true "
                             "(or every batch fetches the same messages)")
        return v

    @field_validator("leave_for")
    @classmethod
    def _leave_needs_keep(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and (info.data.get("mode") != "keep" or info.data.get("use_uidl") is False):
            raise ValueError("leave_for needs mode: keep and use_uidl: true")
        return v


class Redial(Section):
    attempts: int = Field(3, ge=1)
    delay: Duration = 30.0


class Calls(Section):
    every: Duration | None = Field(None, gt=0)


class SizeDistribution(Section):
    """Message sizes: lognormal with this median (octets) and sigma (of ln size), or fixed."""

    distribution: Literal["lognormal", "fixed"] = "lognormal"
    median: Size = 4096
    sigma: float = Field(1.0, ge=0.0, le=5.0)


class Outbox(Section):
    """Mail the subscriber sends by SMTP (RFC 5321) during a call."""

    messages: int = Field(0, ge=0)
    size: SizeDistribution = Field(default_factory=SizeDistribution)
    to: list[str] = Field(default_factory=lambda: ["bob@elsewhere.example"], min_length=1)


class Subscriber(Section):
    user: str
    password: str = Field(repr=False, min_length=1)
    # What the mail client sends to POP3, when it differs from the dial-up
    # password (a wrong one ends the call with end_reason wrong_password).
    pop3_password: str | None = Field(None, repr=False, min_length=1)

    @field_validator("user")
    @classmethod
    def _mailbox_name(cls, v: str) -> str:
        # The user names a Maildir under the ISP's mail root: never a path.
        if not re.fullmatch(r"[a-z0-9_-][a-z0-9._-]{0,63}", v):
            raise ValueError(
                f"bad user name {v!r}; use 1-64 of a-z 0-9 . _ - (not starting with '.')"
            )
        return v
    strategy: Strategy = Field(default_factory=Strategy)
    redial: Redial = Field(default_factory=Redial)
    calls: Calls | None = None
    outbox: Outbox | None = None
    # SLIP's address as typed into the dialer, on a real line (``dialsim dial``)
    address: IPv4Text | None = None


class Maildrop(Section):
    """Mail waiting at the ISP: ``messages`` synthesized, or an existing Maildir/mbox at ``path``."""

    messages: int | None = Field(None, ge=0)
    path: str | None = Field(None, validate_default=True)
    size: SizeDistribution = Field(default_factory=SizeDistribution)
    attachments: float = Field(0.0, ge=0.0, le=1.0)
    # "mail": realistic text messages; "random": base64 of random bytes (incompressible,
    # for throughput checks that should measure the line, not V.42bis).
    content: Literal["mail", "random"] = "mail"

    @field_validator("path")
    @classmethod
    def _messages_or_path(cls, v: str | None, info: ValidationInfo) -> str | None:
        if "messages" not in info.data:  # messages itself was bad; that error is enough
            return v
        has_messages = info.data["messages"] is not None
        if has_messages and v is not None:
            raise ValueError("give messages or path, not both; use messages: N to synthesize, or path: DIR")
        if not has_messages and v is None:
            raise ValueError("needs messages or path; use messages: N to synthesize, or path: DIR (Maildir or mbox)")
        return v


class Incoming(Section):
    """Store-and-forward arrivals at the ISP over SMTP: a Poisson process."""

    rate: EventRate
    size: SizeDistribution = Field(default_factory=SizeDistribution)


def _host_port(v: str | None) -> str | None:
    if v is None:
        return v
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {v!r}; give HOST:PORT, e.g. 10.0.2.2:110")
    return v


HostPort = Annotated[str, AfterValidator(_host_port)]


class Pop3Service(Section):
    """The ISP's POP3 server policy (RFC 1939 autologout, RFC 2449 LOGIN-DELAY), how
    often it refuses a connection, and on a real line (``dialsim dial``) where it is."""

    autologout: Duration = Field(600.0, gt=0)
    login_delay: Duration = 0.0
    refusal_probability: float = Field(0.0, ge=0.0, le=1.0)
    refusal: Literal["not_listening", "busy"] = "not_listening"
    address: HostPort | None = None


class SmtpService(Section):
    """On a real line (``dialsim dial``): where the ISP's SMTP server is."""

    address: HostPort | None = None


class Isp(Section):
    domain: str = "isp.example"
    maildrop: Maildrop
    incoming: Incoming | None = None
    pop3: Pop3Service = Field(default_factory=Pop3Service)
    smtp: SmtpService = Field(default_factory=SmtpService)
    idle_timeout: Duration | None = Field(None, gt=0)  # the NAS hangs up an idle line
    session_limit: Duration | None = Field(None, gt=0)  # ... and any call this long


# --------------------------------------------------------------------------
# A population of subscribers sharing the ISP's modem pool (docs/capacity.md)

# An evening peak for residential dial-up, relative call rates for the hours
# 0..23 (an illustrative shape, not measured data: quiet nights, a lunchtime
# bump, most calls between 19:00 and 23:00).
EVENING_PROFILE = (0.6, 0.3, 0.15, 0.1, 0.1, 0.1, 0.2, 0.5, 0.6, 0.6, 0.6, 0.6,
                   0.8, 0.7, 0.7, 0.8, 1.0, 1.3, 1.8, 2.4, 2.8, 2.6, 1.9, 1.1)


class PopulationCalls(Section):
    """When each subscriber calls: every ``every`` exactly (``periodic``, at a
    random phase), as a Poisson process of mean interval ``every``
    (``poisson``), or Poisson with a rate following ``profile`` over the day."""

    pattern: Literal["periodic", "poisson", "profile"] = "poisson"
    every: Duration = Field(4 * 3600.0, gt=0)
    profile: Literal["evening", "flat"] | list[float] = "evening"

    @field_validator("profile")
    @classmethod
    def _day_of_hours(cls, v):
        if isinstance(v, list) and (len(v) != 24 or min(v) < 0 or sum(v) <= 0):
            raise ValueError("give 24 hourly weights (hours 0..23), none negative, "
                             "not all zero; or evening or flat")
        return v

    def hourly_weights(self) -> tuple[float, ...]:
        """Relative call rate of each hour of the day, mean 1."""
        w = (EVENING_PROFILE if self.profile == "evening" else (1.0,) * 24
             if self.profile == "flat" else tuple(self.profile))
        mean = sum(w) / 24
        return tuple(x / mean for x in w)


class Holding(Section):
    """How long a connected call lasts: until its mail is done (``retrieval``), or
    an exponentially drawn time after CONNECT with mean ``mean`` while the
    retrieval runs inside it (``exponential``, the Erlang B model)."""

    mode: Literal["retrieval", "exponential"] = "retrieval"
    mean: Duration = Field(180.0, gt=0)


class StrategyShare(Strategy):
    """A share of the subscribers whose POP3 client works this way."""

    share: float = Field(gt=0, le=1)


def _sums_to_one(shares: list[float], what: str) -> None:
    if abs(sum(shares) - 1.0) > 1e-6:
        raise ValueError(f"{what} shares sum to {sum(shares):g}; make them sum to 1")


class Population(Section):
    """N subscribers (each with the ``subscriber`` and ``isp.maildrop`` /
    ``isp.incoming`` settings as a template) calling one NAS with ``lines``
    modem lines in a hunt group, in front of one mail host."""

    subscribers: int = Field(ge=1, le=100_000)
    lines: int = Field(ge=1, le=4096)
    calls: PopulationCalls = Field(default_factory=PopulationCalls)
    holding: Holding = Field(default_factory=Holding)
    modems: dict[Literal["v22bis", "v32bis", "v34", "v34_33600", "v90"], float] | None = None
    strategies: list[StrategyShare] | None = Field(None, min_length=1)
    pop3_sessions: int | None = Field(None, ge=1)

    @field_validator("modems")
    @classmethod
    def _modem_shares(cls, v):
        if v is not None:
            if not v or min(v.values()) <= 0:
                raise ValueError("give each profile a share > 0, e.g. {v34: 0.7, v32bis: 0.3}")
            _sums_to_one(list(v.values()), "modem")
        return v

    @field_validator("strategies")
    @classmethod
    def _strategy_shares(cls, v):
        if v is not None:
            _sums_to_one([s.share for s in v], "strategy")
        return v


class Scenario(Section):
    """A whole experiment.  Times in seconds, sizes in octets, rates in bit/s.

    ``scenario_text``, ``source_path`` and ``source_dir`` are set by
    :func:`dialsim.scenario.load.load_scenario`; ``source_dir`` is where relative
    paths (``isp.maildrop.path``) are resolved.
    """

    name: str | None = Field(None, min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    replications: int = Field(1, ge=1)
    duration: Duration = Field(3600.0, gt=0)
    framing: Literal["slip", "cslip", "ppp"] = "ppp"
    ppp: PppOptions = Field(default_factory=PppOptions)
    login_chat: list[ChatStep] = Field(default_factory=list)
    link: Link = Field(default_factory=Link)
    subscriber: Subscriber
    isp: Isp
    # The product of these keys' values, as ``dialsim sweep --vary`` takes them
    # (dotted key -> list of values as the file would give them); every point is
    # validated when the file is loaded (dialsim.scenario.load).
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] | None = None
    population: Population | None = None

    @field_validator("population")
    @classmethod
    def _population_fits(cls, v: Population | None, info: ValidationInfo) -> Population | None:
        return _check_population(v, info.data) if v is not None else v

    _scenario_text: str = PrivateAttr("")
    _source_path: Path | None = PrivateAttr(None)
    _data: dict = PrivateAttr(default_factory=dict)  # the mapping as read (human units)
    _lines: dict = PrivateAttr(default_factory=dict)  # key path -> line in the file
    _overrides: dict = PrivateAttr(default_factory=dict)

    @property
    def scenario_text(self) -> str:
        """The scenario as run (the file's text, with command-line overrides applied)."""
        return self._scenario_text

    @property
    def source_path(self) -> Path | None:
        return self._source_path

    @property
    def source_dir(self) -> Path:
        return self._source_path.parent if self._source_path is not None else Path.cwd()

    @property
    def overrides(self) -> dict[str, Any]:
        """The dotted keys set on top of the file (command line, sweep point), in order."""
        return dict(self._overrides)

    def with_overrides(
        self, overrides: dict[str, Any] | None = None, /, *, origin: str = "(command line)",
        **top_level: Any,
    ) -> Scenario:
        """A copy with keys replaced, validated exactly as the file is (units, every
        cross-field check), e.g. ``with_overrides(seed=9)`` or
        ``with_overrides({"link.profile": "v22bis"}, origin="sweep point 1")``.

        Values are what the file would hold ("28.8k", "45 s").  Raises
        :class:`dialsim.scenario.errors.ScenarioError` with one line naming
        ``origin`` and the field.  ``scenario_text`` becomes the scenario as run.
        """
        from dialsim.scenario.load import apply_overrides

        return apply_overrides(self, {**(overrides or {}), **top_level}, origin)

    def sweep_points(self, extra: list[tuple[str, list[Any]]] | None = None
                     ) -> list[tuple[dict[str, Any], Scenario]]:
        """The points of the file's ``sweep`` block, then ``extra`` keys (``--vary``;
        one naming a key the block has replaces it): ``(settings, scenario)`` each,
        validated exactly as the file is."""
        from dialsim.scenario.load import sweep_points

        return sweep_points(self, extra or [])


def _check_population(pop: Population, data: dict) -> Population:
    """What a population needs from the rest of the scenario."""
    if data.get("framing", "ppp") != "ppp":
        raise ValueError("a population needs framing: ppp (each NAS line hands its caller "
                         "an address by IPCP; SLIP's fixed addresses are not modelled)")
    sub, isp, link = data.get("subscriber"), data.get("isp"), data.get("link")
    if sub is not None and sub.calls is not None:
        raise ValueError("population.calls says when each subscriber calls; "
                         "remove subscriber.calls")
    if isp is not None and isp.maildrop.path is not None:
        raise ValueError("each subscriber of a population gets a synthesized maildrop; "
                         "use isp.maildrop.messages instead of path")
    rate = link.connect_rate if link is not None else None
    for profile in (pop.modems or {}):
        limits = PROFILE_CONNECT_RATES.get(profile)
        if rate is not None and limits is not None and not limits[0] <= rate <= limits[1]:
            raise ValueError(f"link.connect_rate {rate:g} bit/s is out of reach for "
                             f"population.modems' {profile}; omit connect_rate")
    return pop
