"""The login chat (hosts/terminal.py) and the simpy drivers (drivers/sim.py, drivers/nas.py).

The chat script and the terminal server are fed all at once, one byte at a time
and with trailing data; the drivers run real line hosts on a simpy call.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import simpy

from dialsim.drivers.nas import Nas
from dialsim.drivers.sim import serve_line
from dialsim.hosts.isp import Isp, IspSettings
from dialsim.hosts.terminal import ChatScript, PhasedLineHost, TerminalServer
from dialsim.link.call import LinkConfig, connected_call
from dialsim.link.profiles import DialTiming
from dialsim.mail.accounts import Accounts

STEPS = [("login:", "alice", 5.0), ("Password:", "tanstaaf", 5.0)]


def _run_chat(feed) -> tuple[ChatScript, TerminalServer]:
    chat = ChatScript(STEPS, 0.0)
    server = TerminalServer(["login:", "Password:"], Accounts({"alice": "tanstaaf"}),
                            banner="Entering SLIP mode.", now=0.0)
    for _ in range(20):
        moved = False
        for data in server.output(0.0):
            moved = True
            for piece in feed(data):
                chat.receive(piece, 0.0)
        for data in chat.output(0.0):
            moved = True
            for piece in feed(data):
                server.receive(piece, 0.0)
        if not moved:
            break
    return chat, server


@pytest.mark.parametrize("feed", [lambda d: [d], lambda d: [d[i:i + 1] for i in range(len(d))]],
                         ids=["whole", "byte-by-byte"])
def test_chat_logs_in_through_the_terminal_server(feed):
    chat, server = _run_chat(feed)
    assert chat.done and server.done and not chat.failed and not server.failed
    assert (server.user, server.password) == ("alice", "tanstaaf")


def test_terminal_server_refuses_a_wrong_password_and_chat_times_out():
    server = TerminalServer(["login:", "Password:"], Accounts({"alice": "tanstaaf"}),
                            banner="x", now=0.0)
    server.output(0.0)
    server.receive(b"alice\rnope\r", 1.0)
    assert server.failed == "login incorrect" and b"Login incorrect" in b"".join(server.output(1.0))
    chat = ChatScript(STEPS, 0.0)
    chat.receive(b"Welcome\r\nlogin: ", 1.0)  # trailing data after the prompt is fine
    assert chat.output(1.0) == [b"alice\r"]
    assert chat.next_deadline() == 6.0
    chat.on_timer(5.0)  # not yet due: nothing happens
    assert chat.failed is None
    chat.on_timer(6.0)
    assert chat.failed and "Password:" in chat.failed and chat.next_deadline() is None


def test_phased_host_discards_the_link_until_the_chat_is_done():
    class Link:
        def __init__(self):
            self.got = []
            self.done = False

        def receive(self, data, now):
            self.got.append(data)

        def output(self, now):
            return [b"LCP"]

        def events(self):
            return []

        def next_deadline(self):
            return 9.0

        def on_timer(self, now):
            pass

    chat, link = ChatScript(STEPS[:1], 0.0), Link()
    switched = []
    host = PhasedLineHost(chat, link, on_switch=switched.append)
    assert host.output(0.0) == [] and host.discarded_octets == 3
    assert host.next_deadline() == 5.0  # the chat's, earlier than the link's
    host.receive(b"login:", 1.0)
    assert host.output(1.0) == [b"alice\r", b"LCP"] and switched == [1.0]
    host.receive(b"ppp", 2.0)
    assert link.got == [b"ppp"] and host.next_deadline() == 9.0


class _Echo:
    """A line host that echoes each chunk upper-cased, and wants a timer at t=3."""

    def __init__(self):
        self.out, self.fired = [], []

    def receive(self, data, now):
        self.out.append(data.upper())

    def output(self, now):
        out, self.out = self.out, []
        return out

    def events(self):
        return []

    def next_deadline(self):
        return None if self.fired else 3.0

    def on_timer(self, now):
        self.fired.append(now)


def test_serve_line_runs_a_host_on_a_call_until_stop():
    env = simpy.Environment()
    call = connected_call(env, LinkConfig(profile="v34", connect_rate_bps=28800,
                                          error_correction=False, compression=False),
                          np.random.default_rng(1))
    host = _Echo()
    got = []

    def far_end():
        call.subscriber.write(b"hello")
        got.append((yield call.subscriber.read()))

    def near_end():
        yield from serve_line(env, host, call.isp, call.carrier_lost)

    env.process(near_end())
    env.process(far_end())
    env.run(until=10)
    assert got == [b"HELLO"] and host.fired == [3.0]
    call.hangup()
    env.run(until=11)


def test_nas_hunt_group_busy_when_every_line_is_taken():
    env = simpy.Environment()
    isp = Isp(IspSettings(framing="slip", mtu=1006), Accounts({"alice": "pw"}), None, None,
              lines=1, tcp_rng=random.Random(1), ppp_rng=random.Random(2))
    nas = Nas(env, isp)
    cfg = LinkConfig(profile="v34", connect_rate_bps=28800,
                     timing=DialTiming(post_dial_delay_s=(0.0, 0.0)), handshake_s=1.0)
    events: list = []
    results = {}

    def caller(name, delay):
        yield env.timeout(delay)
        results[name] = yield env.process(nas.dial(cfg, np.random.default_rng(len(name)),
                                                   lambda t, e, d: events.append((name, e))))

    env.process(caller("first", 0.0))
    env.process(caller("second", 1.0))  # dials while the only line is taken
    env.run(until=60)
    assert results["first"].outcome == "connect" and results["second"].outcome == "busy"
    assert nas.busy_signals == 1 and isp.ports[0].in_call
    results["first"].call.hangup()
    env.run(until=61)
    assert not isp.ports[0].in_call and isp.free_line() == 0
