"""The simulation's link model on the wall clock: real ptys on both ends of a call.

Nothing here asserts that something happened within a wall-clock tolerance; the
checks are that octets arrive intact and never before the model says they may
(a lower bound the code guarantees), and that the model's own deliveries were
the ones released.  Throttle accuracy is measured by benchmarks/realtime_throttle.py.
"""

import asyncio
import os
import tty

import numpy as np
import simpy

from dialsim.drivers.dte import attach_port
from dialsim.drivers.wallclock import WallClock
from dialsim.link.call import LinkConfig, connected_call
from dialsim.link.pipeline import Direction


def _pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave


def _bridge(clock, port, fd, log):
    """Octets the program writes go into ``port``; what the port delivers goes to the
    program at the delivery time, stamped in ``log`` as (model t, wall t, octets)."""
    return attach_port(clock, port, fd,
                       on_delivery=lambda t, data: log.append((t, clock.now(), data)))


def _read_all(fd, n, loop, timeout):
    got = bytearray()

    async def go():
        fut = loop.create_future()

        def readable():
            try:
                got.extend(os.read(fd, 65536))
            except BlockingIOError:
                return
            if len(got) >= n and not fut.done():
                fut.set_result(None)

        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            loop.remove_reader(fd)

    return go(), got


def test_octets_cross_a_pty_call_intact_and_never_early():
    cfg = LinkConfig(profile="v34", connect_rate_bps=28800, error_correction=True,
                     compression=False)
    payload = os.urandom(6000)

    async def main():
        loop = asyncio.get_running_loop()
        env = simpy.Environment()
        clock = WallClock(env, loop)
        call = connected_call(env, cfg, np.random.default_rng(1))
        (am, aslave), (bm, bslave) = _pty(), _pty()
        up_log, down_log = [], []
        _bridge(clock, call.subscriber, am, down_log)
        _bridge(clock, call.isp, bm, up_log)
        t_sent = clock.now()
        reader, got = _read_all(bslave, len(payload), loop, 30)
        os.write(aslave, payload)
        await reader
        t_done = clock.now()
        for fd in (am, aslave, bm, bslave):
            os.close(fd)
        return bytes(got), up_log, t_done - t_sent

    got, up_log, elapsed = asyncio.run(main())
    assert got == payload
    # Every chunk was released at or after its model delivery time...
    assert all(wall >= model for model, wall, _ in up_log)
    # ... and the whole payload took at least what the line needs for it alone:
    # 8 bits per octet plus LAPM framing at 28800 bit/s.
    assert elapsed >= len(payload) * 8 / 28800
    # The model's deliveries are what arrived, in order.
    assert b"".join(d for _m, _w, d in up_log) == payload


def test_deliveries_follow_the_pure_pipeline():
    """The wall-clock run releases exactly the deliveries Direction.transmit computes
    for the same writes (same times relative to the first write): one model."""
    cfg = LinkConfig(profile="v34_33600", connect_rate_bps=33600, error_correction=False,
                     compression=False)
    chunks = [os.urandom(n) for n in (300, 1, 1500, 40)]

    async def main():
        loop = asyncio.get_running_loop()
        env = simpy.Environment()
        clock = WallClock(env, loop)
        call = connected_call(env, cfg, np.random.default_rng(2))
        (am, aslave), (bm, bslave) = _pty(), _pty()
        log: list = []
        _bridge(clock, call.isp, bm, log)
        writes = []

        def write(data):
            writes.append((env.now, data))
            call.subscriber.write(data)

        for c in chunks:
            clock.inject(write, c)
            await asyncio.sleep(0.01)
        await clock.run_until(lambda: sum(len(d) for _m, _w, d in log) == 1841, timeout=10)
        for fd in (am, aslave, bm, bslave):
            os.close(fd)
        return writes, log, call

    writes, log, call = asyncio.run(main())
    # Recompute with a fresh pipeline of the same configuration.
    ref = Direction(call.upstream.cfg)
    expected = [d for t, data in writes for d in ref.transmit(data, t)]
    assert [round(m, 9) for m, _w, _d in log] == [round(d.t, 9) for d in expected]
    assert [d for _m, _w, d in log] == [d.data for d in expected]
