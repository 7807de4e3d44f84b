"""One replication of a scenario: the ISP, the subscriber, the phone line, in simpy time.

The story of a replication, as the subscriber process tells it:
dial; if busy or no answer, wait and redial; on CONNECT bring up the link
(SLIP at once, PPP after LCP/authentication/IPCP); open TCP to the ISP's POP3
server; log in; retrieve by the client's strategy; QUIT; hang up.  When the
carrier drops, the call is over: the subscriber waits and redials, and its
strategy decides what to fetch again.  The ISP's host runs all replication
long, so the POP3 server notices a vanished subscriber only as a real one did
(TCP gives up, or the RFC 1939 autologout timer fires) and keeps the maildrop
locked until then.

Randomness: one :class:`numpy.random.SeedSequence` per (seed, replication),
split into named child streams so a component's draws never shift another's.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy

from dialsim.drivers.nas import SwitchedPort
from dialsim.drivers.sim import serve_line
from dialsim.hosts.endpoint import AppBinding, FrameLog, IpEndpoint, answer_effects
from dialsim.hosts.mailhost import MailStore
from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.hosts.terminal import ChatScript, PhasedLineHost, TerminalServer
from dialsim.link import call as linkcall
from dialsim.link.profiles import DialTiming
from dialsim.mail.accounts import Accounts
from dialsim.mail.delivery import MaildirDelivery, read_queued
from dialsim.mail.maildrop import ClientInbox, MaildirStore, sim_name, to_crlf
from dialsim.mail.synth import random_message, synthesize_messages
from dialsim.proto.netstack import NetStack
from dialsim.proto.pop3 import GreetingReceived, Pop3Client, Pop3Server, ResponseReceived
from dialsim.proto.ppp import (
    AuthFailed,
    AuthSucceeded,
    IpcpUp,
    LcpUp,
    LinkTerminated,
    PppConnection,
)
from dialsim.proto.slip import SlipLink
from dialsim.proto.smtp import ClientSessionEnded, MailSent, ReplyReceived, SmtpClient, SmtpServer
from dialsim.proto.tcp import Closed, ConnectionReset, ConnectionTimedOut
from dialsim.results.recorder import Recorder

ISP_ADDR = "10.0.0.1"
SUBSCRIBER_ADDR = "10.0.0.2"
POP3_PORT = 110
SMTP_PORT = 25
DNS_SERVERS = ("10.0.0.53", "10.0.0.54")
# The stacks of the era: RFC 1122 4.2.3.1 / RFC 2988 start the retransmission
# timer at 3 s (RFC 6298 lowered it to 1 s in 2011), and BSD's retransmit timer
# ticked every 500 ms, the G of RFC 6298's RTO = SRTT + max(G, 4*RTTVAR).  On a
# 2400 bps line one 1006-octet SLIP frame alone takes 4 s: a modern 1 s RTO
# with millisecond clocks would retransmit spuriously far more than they did.
TCP_1990S = {"initial_rto": 3.0, "clock_granularity": 0.5}

# Append only: a stream's draws depend on its position, so new components go last.
STREAMS = (
    "link", "mail", "isp_tcp", "subscriber_tcp", "isp_ppp", "subscriber_ppp", "incoming",
    "outbox",
)


def seed_streams(seed: int, replication: int) -> dict[str, np.random.SeedSequence]:
    root = np.random.SeedSequence([seed, replication])
    return dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))


def _pyrandom(ss: np.random.SeedSequence) -> random.Random:
    return random.Random(int(ss.generate_state(2, dtype=np.uint64)[0]))


@dataclass
class StoredMessage:
    uidl: str
    sha256: str
    size_octets: int
    t_arrived_s: float


@dataclass
class ReplicationOutcome:
    recorder: Recorder
    stored: dict[str, StoredMessage]
    retrieved_count: dict[str, int]  # sha256 -> times retrieved
    messages_lost: int
    messages_duplicated: int
    capture: FrameLog | None
    framing: str
    seeds: dict[str, list[int]] = field(default_factory=dict)


class IspHost:
    """The ISP: a NAS port (framing per call) in front of a mail host's IP stack.

    It is itself the line host the driver runs all replication long: between
    calls its TCP timers and POP3 autologout go on, and what it would send is
    dropped by the :class:`SwitchedPort`.
    """

    def __init__(self, env, sc, workdir: Path, streams, recorder: Recorder) -> None:
        self.env = env
        self.sc = sc
        self.rec = recorder
        # Scratch folders, thrown away after the replication: no fsync.
        self.store = MaildirStore(workdir / "isp-mail", durable=False)
        self.accounts = Accounts({sc.subscriber.user: sc.subscriber.password})
        self.ppp_rng = _pyrandom(streams["isp_ppp"])
        self.stack = NetStack(
            ISP_ADDR, mtu=_mtu(sc), rng=_pyrandom(streams["isp_tcp"]), tcp_options=TCP_1990S
        )
        self.endpoint = IpEndpoint(self._framing(), self.stack)
        self.endpoint.listen(POP3_PORT, self._pop3_binding)
        self.endpoint.listen(SMTP_PORT, self._smtp_binding)
        self._names = 0
        self.delivery = MaildirDelivery(
            workdir / "isp-mail",
            [sc.isp.domain],
            {sc.subscriber.user},
            hostname="isp",
            name_source=self._next_name,
            durable=False,
        )
        self.mail = MailStore(self.store, self.delivery)
        self.incoming_rng = np.random.default_rng(streams["incoming"])
        self.incoming_delivered = 0
        self.line = self.endpoint
        self.port = SwitchedPort(env)
        self.stop = env.event()
        self.pop3_sessions = 0
        self.last_logins: dict[str, float] = {}
        self.stored_sha: dict[str, StoredMessage] = {}
        self.process = env.process(serve_line(env, self, self.port, self.stop))

    def _framing(self):
        sc = self.sc
        if sc.framing != "ppp":
            return _slip_framing(sc)
        return PppConnection(
            "isp",
            rng=self.ppp_rng,
            mru=sc.ppp.mru,
            accm=sc.ppp.accm,
            auth=sc.ppp.auth,
            authenticator=self.accounts,
            local_ip=ISP_ADDR,
            peer_ip_pool=SUBSCRIBER_ADDR,
            dns=DNS_SERVERS,
            vj=sc.ppp.vj,
        )

    def _pop3_binding(self, conn, now):
        self.pop3_sessions += 1
        server = Pop3Server(
            self.accounts,
            hostname=f"pop.{self.sc.isp.domain}",
            now=now,
            idle_timeout=self.sc.isp.pop3.autologout,
            login_delay=self.sc.isp.pop3.login_delay,
            last_logins=self.last_logins,
        )
        return AppBinding(conn, server, carry_out=self.mail.carry_out)

    def _next_name(self) -> str:
        self._names += 1
        return sim_name(self.env.now, self._names, "isp")

    def _smtp_binding(self, conn, now):
        # Connections arriving on a NAS port come from dial-up subscribers:
        # they may relay to other domains (never an open relay to the Internet).
        server = SmtpServer(
            self.delivery,
            hostname=f"mail.{self.sc.isp.domain}",
            local_domains=(self.sc.isp.domain,),
            subscriber_client=True,
            now=now,
        )
        return AppBinding(conn, server, carry_out=self.mail.carry_out)

    def incoming(self):
        """simpy process: mail for the subscriber arrives from the Internet by SMTP
        (a Poisson process), is delivered durably into the maildrop and waits there."""
        inc = self.sc.isp.incoming
        user = self.sc.subscriber.user
        seq = 0
        while True:
            yield self.env.timeout(float(self.incoming_rng.exponential(1.0 / inc.rate)))
            seq += 1
            (msg,) = synthesize_messages(
                self.incoming_rng,
                1,
                median_size_octets=inc.size.median,
                sigma=0.0 if inc.size.distribution == "fixed" else inc.size.sigma,
                attachment_share=0.1,
                to_addr=f"{user}@{self.sc.isp.domain}",
                domain=f"sender{seq % 7}.example",
                start_time=self.env.now,
            )
            if smtp_exchange(self.mail, self.sc.isp.domain, f"friend{seq}@elsewhere.example",
                             [f"{user}@{self.sc.isp.domain}"], msg, self.env.now):
                data = to_crlf(msg)
                sha = hashlib.sha256(data).hexdigest()
                self.stored_sha[sha] = StoredMessage("", sha, len(data), self.env.now)
                self.incoming_delivered += 1

    def answer(self, call, now: float) -> None:
        self.endpoint.framing = self._framing()
        chat = self.sc.login_chat
        if chat:
            server = TerminalServer(
                [step.expect for step in chat],
                self.accounts,
                banner="Entering PPP mode." if self.sc.framing == "ppp" else
                f"Entering SLIP mode. Your IP address is {SUBSCRIBER_ADDR}, MTU is {self.sc.link.mtu}.",
                now=now,
            )
            self.line = PhasedLineHost(server, self.endpoint, on_switch=self._link_start)
        else:
            self.line = self.endpoint
            self._link_start(now)
        self.port.attach(call.isp)

    def _link_start(self, now: float) -> None:
        if isinstance(self.endpoint.framing, PppConnection):
            self.endpoint.framing.lower_up(now)
            self.endpoint.framing.open(now)

    def hung_up(self, now: float) -> None:
        if isinstance(self.endpoint.framing, PppConnection):
            self.endpoint.framing.lower_down(now)
        self.line = self.endpoint
        self.port.detach()

    # -- line host
    def receive_line(self, data: bytes, now: float) -> None:
        self.line.receive_line(data, now)

    def line_output(self, now: float) -> list[bytes]:
        return self.line.line_output(now)

    def next_deadline(self) -> float | None:
        return self.line.next_deadline()

    def on_timer(self, now: float) -> None:
        self.line.on_timer(now)


def _mtu(sc) -> int:
    if sc.framing == "ppp":
        return int(sc.ppp.mru)
    return int(sc.link.mtu)


def _slip_framing(sc):
    return SlipLink(mtu=int(sc.link.mtu), vj=sc.framing == "cslip")


def _link_config(sc):
    lk = sc.link
    return linkcall.LinkConfig(
        profile=lk.profile,
        connect_rate_bps=lk.connect_rate,
        error_correction=lk.error_correction,
        compression=lk.compression,
        dte_rate_subscriber_bps=lk.serial_rate,
        dte_rate_isp_bps=lk.isp_serial_rate or lk.serial_rate,
        bit_error_rate=lk.bit_error_rate,
        busy_probability=lk.busy_probability,
        phone_number=lk.phone_number,
        carrier_loss_at=list(lk.carrier_loss.at) if lk.carrier_loss else [],
        carrier_loss_mtbf_s=lk.carrier_loss.mean_time_between if lk.carrier_loss else None,
        timing=DialTiming(
            dial_tone_wait_s=lk.dial.dial_tone_wait,
            dtmf_tone_s=lk.dial.dtmf_tone,
            carrier_wait_s=lk.dial.carrier_wait,
            answer_after_rings=lk.dial.answer_after_rings,
            post_dial_delay_s=tuple(lk.dial.post_dial_delay),
        ),
        handshake_s=lk.handshake,
    )


class Subscriber:
    """The subscriber's computer, dialer and mail client across a replication."""

    def __init__(self, env, sc, isp: IspHost, workdir: Path, streams, rec: Recorder, capture):
        self.env = env
        self.sc = sc
        self.isp = isp
        self.rec = rec
        self.streams = streams
        self.capture = capture
        self.inbox = ClientInbox(workdir / "subscriber-inbox", durable=False)
        self.seen_uidls: set[str] = set()
        self.retrieved_count: dict[str, int] = {}  # sha256 -> times retrieved
        self.session = 0
        self.link_rng = np.random.default_rng(streams["link"])
        self.tcp_rng = _pyrandom(streams["subscriber_tcp"])
        self.ppp_rng = _pyrandom(streams["subscriber_ppp"])
        st = sc.subscriber.strategy
        self.policy = RetrievalPolicy(mode=st.mode, use_uidl=st.use_uidl)
        self.outbox: list[bytes] = []
        self.sent_sha: set[str] = set()  # outbox mail the ISP answered 250 to
        ob = sc.subscriber.outbox
        if ob is not None and ob.messages:
            self.outbox = synthesize_messages(
                np.random.default_rng(streams["outbox"]),
                ob.messages,
                median_size_octets=ob.size.median,
                sigma=0.0 if ob.size.distribution == "fixed" else ob.size.sigma,
                attachment_share=0.1,
                to_addr=ob.to[0],
                domain=sc.isp.domain,
                start_time=0.0,
            )

    def _on_link_event(self, t, event, detail):
        self.rec.link_event(t_s=t, event=event, detail=detail)

    def run(self):
        sc = self.sc
        every = sc.subscriber.calls.every if sc.subscriber.calls else None
        t_next_call = 0.0
        while t_next_call < sc.duration:
            if self.env.now < t_next_call:
                yield self.env.timeout(t_next_call - self.env.now)
            for attempt in range(sc.subscriber.redial.attempts):
                complete = yield from self.one_attempt(attempt)
                if complete:
                    break
                yield self.env.timeout(sc.subscriber.redial.delay)
            if every is None:
                return
            t_next_call += every
            while t_next_call <= self.env.now:
                t_next_call += every

    def one_attempt(self, attempt: int):
        env, sc = self.env, self.sc
        self.session += 1
        row = _session_row(self.session, sc, attempt)
        row["t_dial_s"] = env.now
        result = yield env.process(
            linkcall.dial(env, _link_config(sc), self.link_rng, self._on_link_event)
        )
        if result.outcome != "connect":
            row["t_end_s"] = env.now
            row["end_reason"] = result.outcome
            self.rec.session(**row)
            return False
        call = result.call
        row["t_connect_s"] = env.now
        row["connect_rate_bps"] = float(result.connect_rate_down_bps)
        row["connect_rate_up_bps"] = float(result.connect_rate_up_bps)
        self.isp.answer(call, env.now)

        if sc.framing == "ppp":
            framing = PppConnection(
                "subscriber",
                rng=self.ppp_rng,
                mru=sc.ppp.mru,
                accm=sc.ppp.accm,
                auth=sc.ppp.auth,
                username=sc.subscriber.user,
                password=sc.subscriber.password,
                dns=("0.0.0.0", "0.0.0.0"),  # ask for primary and secondary DNS (RFC 1877)
                vj=sc.ppp.vj,
            )
        else:
            framing = _slip_framing(sc)
        stack = NetStack(SUBSCRIBER_ADDR, mtu=_mtu(sc), rng=self.tcp_rng, tcp_options=TCP_1990S)
        ep = IpEndpoint(framing, stack, capture=self.capture)
        client = Pop3Client(now=env.now)
        st = sc.subscriber.strategy
        retrieval = RetrievalSession(
            client,
            user=sc.subscriber.user,
            password=sc.subscriber.password,
            policy=self.policy,
            seen_uidls=self.seen_uidls,
            use_apop=st.apop,
            pipelining=st.pipelining,
        )
        stop = env.event()
        state = {"retrieved": 0, "octets": 0}

        def on_app_event(ev, now):
            if isinstance(ev, GreetingReceived):
                row["t_pop3_greeting_s"] = now
            elif isinstance(ev, ResponseReceived):
                self.rec.command(
                    session=self.session,
                    protocol="pop3",
                    command=f"{ev.verb} {ev.arg_shown}".strip(),
                    t_sent_s=ev.t_sent,
                    t_first_byte_s=ev.t_first_byte,
                    t_done_s=ev.t_done,
                    bytes_up=ev.bytes_up,
                    bytes_down=ev.bytes_down,
                    ok=bool(ev.ok),
                )
                if ev.verb in ("PASS", "APOP") and ev.ok:
                    row["t_logged_in_s"] = now
            before = len(retrieval.retrieved)
            retrieval.on_event(ev, now)
            for uidl, _n, data, t_done in retrieval.retrieved[before:]:
                self._keep(uidl, data, t_done)
                state["retrieved"] += 1
                state["octets"] += len(data)
            if retrieval.done and not stop.triggered:
                stop.succeed("quit")

        link_failure: list[str] = []

        smtp_state = {"pop3_opened": False, "sent": 0, "octets": 0}

        def open_pop3(now):
            if smtp_state["pop3_opened"]:
                return
            smtp_state["pop3_opened"] = True
            ep.connect(
                ISP_ADDR,
                POP3_PORT,
                now,
                lambda conn, now: AppBinding(conn, client, on_event=on_app_event),
            )

        def on_link_event(ev, now):
            if isinstance(ev, LcpUp):
                row["t_lcp_up_s"] = now
            elif isinstance(ev, AuthSucceeded):
                row["t_auth_s"] = now
            elif isinstance(ev, IpcpUp):
                row["t_ipcp_up_s"] = now
                if ev.local_ip:
                    stack.address = ev.local_ip
                link_up(now)
            elif isinstance(ev, AuthFailed | LinkTerminated) and not stop.triggered:
                link_failure.append("ppp_auth_failed" if isinstance(ev, AuthFailed) else "ppp_terminated")
                stop.succeed("link")

        ep.link_event_handler = on_link_event

        def link_start(now):
            row["t_chat_done_s"] = now
            if isinstance(framing, PppConnection):
                framing.lower_up(now)
                framing.open(now)
            else:
                link_up(now)

        def link_up(now):
            row["t_link_up_s"] = now
            if not self.outbox:
                open_pop3(now)
                return
            # Like Eudora's "Send queued messages, then check mail".
            smtp = SmtpClient(helo_name=f"{sc.subscriber.user}-pc.{sc.isp.domain}", now=now)
            queued = list(self.outbox)
            for msg in queued:
                smtp.send_mail(
                    f"{sc.subscriber.user}@{sc.isp.domain}", list(sc.subscriber.outbox.to), msg, now
                )
            smtp.quit(now)

            def on_smtp_event(ev, now):
                if isinstance(ev, ReplyReceived):
                    self.rec.command(
                        session=self.session,
                        protocol="smtp",
                        command=ev.command,
                        t_sent_s=ev.t_sent,
                        t_first_byte_s=ev.t_first_byte,
                        t_done_s=ev.t_done,
                        bytes_up=ev.bytes_up,
                        bytes_down=ev.bytes_down,
                        ok=ev.code < 400,
                    )
                elif isinstance(ev, MailSent) and ev.ok:
                    msg = queued[ev.index]
                    if msg in self.outbox:
                        self.outbox.remove(msg)
                    smtp_state["sent"] += 1
                    smtp_state["octets"] += len(msg)
                    self.sent_sha.add(hashlib.sha256(msg).hexdigest())
                    self.rec.message(
                        session=self.session,
                        direction="sent",
                        uidl="",
                        size_octets=len(msg),
                        sha256=hashlib.sha256(msg).hexdigest(),
                        t_retrieved_s=now,
                        duplicate=False,
                        intact=True,
                    )
                elif isinstance(
                    ev, ClientSessionEnded | Closed | ConnectionReset | ConnectionTimedOut
                ):
                    open_pop3(now)

            ep.connect(ISP_ADDR, SMTP_PORT, now,
                       lambda conn, now: AppBinding(conn, smtp, on_event=on_smtp_event))

        if sc.login_chat:
            chat = ChatScript([(c.expect, c.send, c.timeout) for c in sc.login_chat], env.now)
            line_host = PhasedLineHost(chat, ep, on_switch=link_start)
        else:
            chat = None
            line_host = ep
            link_start(env.now)

        def check_chat(now):
            if chat is not None and chat.failed and not stop.triggered:
                link_failure.append("chat_failed")
                stop.succeed("chat")

        proc = env.process(serve_line(env, line_host, call.subscriber, stop, on_wake=check_chat))
        yield env.any_of([stop, call.carrier_lost])
        if not stop.triggered:
            stop.succeed("carrier_lost")
            reason = "carrier_lost"
        else:
            # in_use: the ISP still holds the maildrop for a session it has not
            # yet noticed is gone (TCP retries or the autologout will free it).
            if link_failure:
                reason = link_failure[0]
            elif retrieval.quit_ok and not retrieval.error:
                reason = "quit"
            else:
                reason = retrieval.error or "error"
            call.hangup("subscriber")
        yield proc
        self.isp.hung_up(env.now)
        row.update(
            t_end_s=env.now,
            end_reason=reason,
            messages_retrieved=state["retrieved"],
            octets_retrieved=state["octets"],
            messages_sent=smtp_state["sent"],
            octets_sent=smtp_state["octets"],
            # Octets through the serial ports (framed, escaped), and the bits the
            # modems put on the line for them (start/stop or LAPM, after V.42bis).
            line_bytes_down=int(call.subscriber.counters["octets_in"]),
            line_bytes_up=int(call.subscriber.counters["octets_out"]),
            line_bits_down=int(round(call.subscriber.counters["line_octets_in"] * 8)),
            line_bits_up=int(round(call.subscriber.counters["line_octets_out"] * 8)),
        )
        row.update(ep.received.as_dict("down"))
        row.update(ep.sent.as_dict("up"))
        self.rec.session(**row)
        # A wrong password will not get better by redialling.
        return reason in ("quit", "auth", "ppp_auth_failed")

    def _keep(self, uidl, data: bytes, t_done: float) -> None:
        # Keyed by content: a client that does not track UIDLs cannot tell a
        # message fetched twice from a new one, but the tables can.
        sha = hashlib.sha256(data).hexdigest()
        n = self.retrieved_count.get(sha, 0)
        self.retrieved_count[sha] = n + 1
        self.inbox.add(data)
        stored = self.isp.stored_sha.get(sha)
        self.rec.message(
            session=self.session,
            direction="retrieved",
            uidl=uidl or "",
            size_octets=len(data),
            sha256=sha,
            t_retrieved_s=t_done,
            duplicate=n > 0,
            intact=stored is not None,
            t_arrived_s=stored.t_arrived_s if stored is not None else float("nan"),
            latency_s=t_done - stored.t_arrived_s if stored is not None else float("nan"),
        )


def _session_row(session: int, sc, attempt: int) -> dict:
    return {
        "session": session,
        "attempt": attempt + 1,
        "profile": sc.link.profile,
        "framing": sc.framing,
    }


def run_replication(sc, replication: int, workdir: Path, *, capture: bool = False):
    streams = seed_streams(sc.seed, replication)
    env = simpy.Environment()
    rec = Recorder(replication)
    workdir.mkdir(parents=True, exist_ok=True)
    isp = IspHost(env, sc, workdir, streams, rec)
    stored = _fill_maildrop(isp, sc, np.random.default_rng(streams["mail"]), Path(sc.source_dir))
    isp.stored_sha = {m.sha256: m for m in stored.values()}
    log = FrameLog(packets_only=sc.framing in ("slip", "cslip")) if capture else None
    sub = Subscriber(env, sc, isp, workdir, streams, rec, log)
    env.process(sub.run())
    if sc.isp.incoming is not None:
        env.process(isp.incoming())
    env.run(until=sc.duration)
    # What is left in the maildrop after the replication?
    # A message is lost if it is no longer in the maildrop and never reached the
    # subscriber intact (a DELE committed for mail the client does not have).
    remaining = {hashlib.sha256(m).hexdigest() for m in isp.store.peek(sc.subscriber.user).values()}
    lost = sum(
        1 for sha in isp.stored_sha if sha not in remaining and sha not in sub.retrieved_count
    )
    dup = sum(n - 1 for n in sub.retrieved_count.values() if n > 1)
    # Mail the ISP accepted with 250 must be in its relay queue.
    queue = isp.delivery.outbound() / "new"
    queued = {
        hashlib.sha256(read_queued(p)[2]).hexdigest() for p in sorted(queue.glob("*"))
    } if queue.is_dir() else set()
    lost += len(sub.sent_sha - queued)
    return ReplicationOutcome(
        recorder=rec,
        stored=dict(isp.stored_sha),
        retrieved_count=dict(sub.retrieved_count),
        messages_lost=lost,
        messages_duplicated=dup,
        capture=log,
        framing=sc.framing,
        seeds={
            "seed_sequence_entropy": [int(sc.seed), int(replication)],
            "streams": {k: list(v.spawn_key) for k, v in streams.items()},
        },
    )


def _fill_maildrop(isp: IspHost, sc, rng, base: Path) -> dict[str, StoredMessage]:
    user = sc.subscriber.user
    md_cfg = sc.isp.maildrop
    msgs: list[bytes] = []
    if md_cfg.path is not None:
        isp.store.import_messages(
            user, base / md_cfg.path, name_for=lambda seq: sim_name(0.0, seq, "isp")
        )
    elif md_cfg.content == "random":
        sizes = _draw_sizes(rng, md_cfg.messages, md_cfg.size)
        msgs = [
            random_message(rng, n, to_addr=f"{user}@{sc.isp.domain}", domain=sc.isp.domain)
            for n in sizes
        ]
    else:
        msgs = synthesize_messages(
            rng,
            md_cfg.messages,
            median_size_octets=md_cfg.size.median,
            sigma=0.0 if md_cfg.size.distribution == "fixed" else md_cfg.size.sigma,
            attachment_share=md_cfg.attachments,
            to_addr=f"{user}@{sc.isp.domain}",
            domain=sc.isp.domain,
            start_time=0.0,
        )
    for seq, m in enumerate(msgs):
        isp.store.deliver(user, m, name=sim_name(0.0, seq, "isp"))
    return {
        uidl: StoredMessage(uidl, hashlib.sha256(data).hexdigest(), len(data), 0.0)
        for uidl, data in isp.store.peek(user).items()
    }


def _draw_sizes(rng, count: int, dist) -> list[int]:
    if dist.distribution == "fixed" or dist.sigma == 0:
        return [int(dist.median)] * count
    return [int(x) for x in rng.lognormal(np.log(dist.median), dist.sigma, size=count)]


def smtp_exchange(mail: MailStore, domain: str, sender: str, recipients: list[str],
                  data: bytes, now: float) -> bool:
    """One SMTP transaction between the ISP's mail exchanger and a sending host on the
    Internet side, in memory and in no simulated time (that side is fast next to a
    modem): real SMTP bytes through the same server the subscribers use."""
    server = SmtpServer(mail.delivery, hostname=f"mx.{domain}", local_domains=(domain,),
                        subscriber_client=False, now=now)
    client = SmtpClient(helo_name="mta.elsewhere.example", now=now)
    client.send_mail(sender, recipients, data, now)
    client.quit(now)
    for _ in range(10_000):
        answer_effects(server, mail.carry_out, now)
        a, b = b"".join(server.output(now)), b"".join(client.output(now))
        if not a and not b:
            break
        if a:
            client.receive(a, now)
        if b:
            server.receive(b, now)
    return any(isinstance(e, MailSent) and e.ok for e in client.events())
