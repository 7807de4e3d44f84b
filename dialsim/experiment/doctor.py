"""``dialsim doctor``: the ISP support page's three checks, on a simulated or a live line.

The checks a 1990s ISP's help page walked its subscribers through:

1. **Is the server reachable?** An ICMP echo to the mail host over the link
   ("ping pop.isp.example"), with its round-trip time.
2. **Is POP3 answering on port 110?** Connect and read the greeting, as the
   page's ``telnet pop.isp.example 110`` showed it.
3. **Does the mail server take the password?** USER and PASS; on a failure,
   the page's hint: passwords are case sensitive, and usually lower case.

Each ends in a verdict and the next step to try.  The checks run as the
subscriber's own computer (:class:`~dialsim.hosts.subscriber.Computer`) on
whatever line it is given: the scenario's simulated line in virtual time (an
instant), a real or virtual modem on a serial port in real time, or -- with
no modem at all -- a direct connection to a host and port.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from dialsim.drivers.sim import serve_line
from dialsim.hosts.endpoint import AppBinding
from dialsim.hosts.subscriber import Computer, SubscriberSettings
from dialsim.proto.netstack import EchoReplyReceived
from dialsim.proto.pop3 import GreetingReceived, Pop3Client, ResponseReceived

__all__ = ["Verdict", "checkup", "direct_checkup"]


@dataclass(frozen=True, slots=True)
class Verdict:
    check: str
    ok: bool
    detail: str
    next_step: str


PING_TIMEOUT_S = 10.0
GREETING_TIMEOUT_S = 30.0
LOGIN_TIMEOUT_S = 30.0
CASE_HINT = ("passwords are case sensitive and usually all lower case: check Caps Lock, "
             "then type it again")


def _wait(env, until: Callable[[], bool], timeout: float, step: float = 0.02):
    """simpy: wait until ``until()`` holds or ``timeout`` passes; True if it held."""
    end = env.now + timeout
    while not until():
        if env.now >= end:
            return False
        yield env.timeout(min(step, end - env.now))
    return True


def checkup(env, dial, settings: SubscriberSettings, *, rng: random.Random,
            on_verdict: Callable[[Verdict], None]):
    """simpy process (virtual or wall clock): dial, bring up the link, run the checks."""
    result = yield env.process(dial())
    if result.outcome != "connect":
        on_verdict(Verdict("line", False, f"the call failed: {result.outcome.replace('_', ' ')}",
                           "check the phone number, the modem's cable and the dial tone"))
        return
    call = result.call
    pc = Computer(settings, rng=rng, now=env.now)
    done = env.event()
    env.process(serve_line(env, pc, call.subscriber, done))
    up = yield from _wait(env, lambda: pc.status.up or pc.status.down_reason is not None, 90.0)
    if not (up and pc.status.up):
        why = pc.status.down_reason or pc.chat_failed or "no PPP/SLIP link"
        on_verdict(Verdict("line", False, f"connected, but the link did not come up: {why}",
                           f"check the login name and password for the dial-in; {CASE_HINT}"))
    else:
        on_verdict(Verdict("line", True, f"link up, address {pc.status.local_ip}", ""))

        def kick() -> None:  # something new to send: out now, not at the next wake-up
            for chunk in pc.output(env.now):
                call.subscriber.write(chunk)

        yield from _ping(env, pc, settings.isp_address, on_verdict, kick)
        yield from _pop3(env, pc, settings, on_verdict, kick)
    done.succeed()
    if call.up:
        call.hangup("subscriber")


def _ping(env, pc: Computer, address: str, on_verdict, kick):
    replies: list[float] = []
    t0 = env.now
    pc.stack.ping(address, 0x4453, 1, b"dialsim doctor ping")
    kick()

    def seen() -> bool:
        replies.extend(env.now for ev in pc.events() if isinstance(ev, EchoReplyReceived))
        return bool(replies)

    if (yield from _wait(env, seen, PING_TIMEOUT_S)):
        on_verdict(Verdict("ping", True, f"{address} answered in {1000 * (replies[0] - t0):.0f} ms",
                           ""))
    else:
        on_verdict(Verdict("ping", False, f"no echo reply from {address} in {PING_TIMEOUT_S:g} s",
                           "the link is up but the ISP's network does not answer: call the ISP"))


def _pop3(env, pc: Computer, settings: SubscriberSettings, on_verdict, kick):
    seen: dict[str, object] = {}

    def on_event(ev, now):
        if isinstance(ev, GreetingReceived):
            seen["greeting"] = ev
        elif isinstance(ev, ResponseReceived):
            seen[ev.verb] = ev

    client = Pop3Client(now=env.now)
    pc.connect(settings.isp_address, settings.pop3_port, env.now,
               lambda conn, now: AppBinding(conn, client, on_event=on_event))
    kick()
    where = f"{settings.isp_address} port {settings.pop3_port}"
    if not (yield from _wait(env, lambda: "greeting" in seen, GREETING_TIMEOUT_S)):
        on_verdict(Verdict("pop3", False, f"no POP3 greeting from {where}",
                           "the mail server is down or the address is wrong: call the ISP"))
        return
    greeting = seen["greeting"]
    on_verdict(Verdict("pop3", greeting.ok, f"{where} said: {greeting.text}",
                       "" if greeting.ok else "the mail server refuses connections: call the ISP"))
    if not greeting.ok:
        return
    client.user(settings.user, now=env.now)
    kick()
    yield from _wait(env, lambda: "USER" in seen, LOGIN_TIMEOUT_S)
    client.pass_(settings.password, now=env.now)
    kick()
    yield from _wait(env, lambda: "PASS" in seen, LOGIN_TIMEOUT_S)
    answer = seen.get("PASS") or seen.get("USER")
    if answer is not None and answer.ok:
        on_verdict(Verdict("login", True, f"logged in as {settings.user}", ""))
    else:
        text = answer.text if answer is not None else "no answer"
        on_verdict(Verdict("login", False, f"the mail server refused the password: {text}",
                           CASE_HINT))
    client.quit(now=env.now)
    kick()
    yield from _wait(env, lambda: "QUIT" in seen, 10.0)


def direct_checkup(host: str, port: int, user: str, password: str,
                   on_verdict: Callable[[Verdict], None]) -> None:
    """The same checks over the host's own network (no modem): ICMP echo, the POP3
    greeting, USER/PASS."""
    import poplib

    try:
        address = socket.gethostbyname(host)
    except OSError as e:
        on_verdict(Verdict("ping", False, f"cannot resolve {host}: {e.strerror or e}",
                           "check the server name (DNS)"))
        return
    on_verdict(_icmp_echo(address))
    try:
        pop = poplib.POP3(address, port, timeout=GREETING_TIMEOUT_S)
    except OSError as e:
        on_verdict(Verdict("pop3", False, f"no POP3 server at {host}:{port}: {e.strerror or e}",
                           "the mail server is down or the address is wrong: call the ISP"))
        return
    on_verdict(Verdict("pop3", True, f"{host} port {port} said: "
                       f"{pop.getwelcome().decode('latin-1')}", ""))
    try:
        pop.user(user)
        pop.pass_(password)
        on_verdict(Verdict("login", True, f"logged in as {user}", ""))
    except poplib.error_proto as e:
        on_verdict(Verdict("login", False, f"the mail server refused the password: "
                           f"{e.args[0].decode('latin-1', 'replace')}", CASE_HINT))
    finally:
        try:
            pop.quit()
        except (OSError, poplib.error_proto):
            pop.close()


def _icmp_echo(address: str) -> Verdict:
    """One ICMP echo over the host's network (a datagram ICMP socket; root may use it)."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except OSError as e:
        return Verdict("ping", False, f"cannot send ICMP here: {e.strerror or e}",
                       "run as root, or allow ping sockets (net.ipv4.ping_group_range)")
    with sock:
        sock.settimeout(PING_TIMEOUT_S)
        payload = b"dialsim doctor ping"
        header = struct.pack("!BBHHH", 8, 0, 0, 0, 1)
        t0 = time.monotonic()
        try:
            sock.sendto(header + payload, (address, 0))
            sock.recvfrom(1024)
        except OSError:
            return Verdict("ping", False, f"no echo reply from {address}",
                           "the server or the network does not answer: call the ISP")
        return Verdict("ping", True,
                       f"{address} answered in {1000 * (time.monotonic() - t0):.0f} ms", "")
