"""pyserial URL handler: ``serial.serial_for_url("dialsim://SCENARIO?...")``.

Register it the way pyserial documents URL handler packages, then open a
virtual modem like any serial port::

    import serial
    serial.protocol_handler_packages.append("dialsim.pyserial")
    port = serial.serial_for_url("dialsim://scenarios/quickstart.yaml", timeout=1)
    port.write(b"ATDT555-0123\\r")

Behind the port is the same virtual Hayes modem as ``dialsim modem``
(:class:`dialsim.drivers.modem.VirtualModem`) on the scenario's link model,
run on the wall clock in a background thread; the port's end of it is a
socketpair.  Unlike a pty, this port has modem control lines: ``cd``, ``dsr``,
``cts`` and ``ri`` read the modem's circuits, and ``dtr = False`` drops DTR
(with the modem's &D2, a hang-up).

The URL: ``dialsim://PATH`` (relative to the current directory) or
``dialsim:///ABSOLUTE/PATH``, with query parameters ``seed=N``,
``isp-command=CMD`` and ``phonebook=FILE`` as the ``dialsim modem`` options.
The baud rate is not used: the scenario's serial rate and link model set the
pace.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import urllib.parse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, Timeout

__all__ = ["Serial"]


class _ModemThread:
    """The asyncio loop that runs the scenario's world and one VirtualModem."""

    def __init__(self, sc, fd: int, isp_command: str | None, aliases: dict[str, str]) -> None:
        self.sc = sc
        self.fd = fd
        self.isp_command = isp_command
        self.aliases = aliases
        self.loop: asyncio.AbstractEventLoop | None = None
        self.modem = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dialsim-modem", daemon=True)
        self.thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise SerialException(f"dialsim: {self.error}") from self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the opener, or at close
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        from dialsim.experiment.live import modem_line

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with modem_line(self.sc, isp_command=self.isp_command,
                              aliases=self.aliases) as new_modem:
            self.modem = new_modem(self.fd)
            self._ready.set()
            await self._stop.wait()

    def call(self, fn, *args) -> None:
        """Run ``fn(*args)`` on the modem's loop, at the model's now."""
        if self.loop is not None and self.modem is not None:
            clock = self.modem.clock
            self.loop.call_soon_threadsafe(clock.inject, fn, *args)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


class Serial(SerialBase):
    """A serial port whose far end is dialsim's virtual Hayes modem."""

    def open(self) -> None:
        from dialsim.drivers.modem import read_phonebook
        from dialsim.scenario.load import ScenarioError, load_scenario

        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        path, options = self.from_url(self.portstr)
        try:
            sc = load_scenario(path)
            if options.get("seed") is not None:
                sc = sc.with_overrides(seed=int(options["seed"]))
            aliases = read_phonebook(options["phonebook"]) if options.get("phonebook") else {}
        except (ScenarioError, OSError, ValueError) as e:
            raise SerialException(f"dialsim: {e}") from None
        ours, theirs = socket.socketpair()
        self._sock = ours
        self._theirs = theirs
        self._engine = _ModemThread(sc, theirs.fileno(), options.get("isp-command"), aliases)
        self.is_open = True
        if not self._dsrdtr:
            self._update_dtr_state()
        self.reset_input_buffer()

    def from_url(self, url: str) -> tuple[str, dict[str, str]]:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "dialsim":
            raise SerialException(f"expected a URL of the form dialsim://SCENARIO, not {url!r}")
        path = parts.netloc + parts.path
        if not path:
            raise SerialException("dialsim:// needs a scenario file: dialsim://scenarios/x.yaml")
        options = {}
        for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
            if key not in ("seed", "isp-command", "phonebook"):
                raise SerialException(f"dialsim://: unknown option {key!r}; "
                                      "accepted: seed, isp-command, phonebook")
            options[key] = values[-1]
        return path, options

    def _reconfigure_port(self) -> None:
        """Baud rate, byte size and parity do not change the model's pace."""

    def close(self) -> None:
        if self.is_open:
            self._engine.stop()
            for s in (self._sock, self._theirs):
                s.close()
            self.is_open = False

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        ready, _, _ = select.select([self._sock], [], [], 0)
        return len(self._sock.recv(65536, socket.MSG_PEEK)) if ready else 0

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        out = bytearray()
        timeout = Timeout(self._timeout)
        while len(out) < size:
            ready, _, _ = select.select([self._sock], [], [], timeout.time_left())
            if not ready:
                break
            chunk = self._sock.recv(size - len(out))
            if not chunk:
                raise SerialException("dialsim: the virtual modem went away")
            out += chunk
            if timeout.expired():
                break
        return bytes(out)

    def write(self, data) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(data)
        self._sock.sendall(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        while select.select([self._sock], [], [], 0)[0]:
            if not self._sock.recv(65536):
                break

    def reset_output_buffer(self) -> None:
        """Nothing waits on our side: written octets are already with the modem."""

    def send_break(self, duration: float = 0.25) -> None:
        time.sleep(duration)

    def _update_break_state(self) -> None:
        """The model has no break condition."""

    def _update_rts_state(self) -> None:
        """RTS is not modelled (CTS stays on)."""

    def _update_dtr_state(self) -> None:
        if self.is_open:
            engine = self._engine
            engine.call(lambda on: engine.modem.set_dtr_from_port(on), bool(self._dtr_state))

    def _line(self, name: str) -> bool:
        if not self.is_open:
            raise PortNotOpenError()
        return bool(getattr(self._engine.modem.modem, name))

    @property
    def cts(self) -> bool:
        return self._line("cts")

    @property
    def dsr(self) -> bool:
        return self._line("dsr")

    @property
    def ri(self) -> bool:
        return self._line("ri")

    @property
    def cd(self) -> bool:
        return self._line("dcd")

    def fileno(self) -> int:
        return self._sock.fileno()
