"""`dialsim modem`: the virtual Hayes modem on a real pty (and a TCP port), driven by
real programs: pyserial, Debian's chat, a socket client as an emulator would be.

Dials take about five seconds of wall time (S6 2 s, DTMF, one 2 s ring, a 0.5 s
handshake): the scenarios are fast where the model allows, not the clock.
"""

import shutil
import socket
import subprocess
import time

import pytest
import serial

from tests.interop.peers import require
from tests.realtime.conftest import EchoServer, ModemProcess, free_port, read_until


def _at(ser, command: bytes, expect: bytes = b"OK", timeout: float = 3) -> bytes:
    ser.write(command + b"\r")
    reply = read_until(ser, expect, timeout)
    assert expect in reply, (command, reply)
    return reply


def test_pyserial_at_dialogue_connect_data_escape_and_hangup(fast_scenario, modem_on_pty):
    bbs = EchoServer()
    modem, path = modem_on_pty(fast_scenario())
    with serial.Serial(str(path), 115200, timeout=0.2) as ser:
        assert b"OK" in _at(ser, b"AT")
        _at(ser, b"ATZ")
        assert b"OK" in _at(ser, b"ATE0V1Q0X4")
        reply = _at(ser, b"ATS7?", b"OK")
        assert b"050" in reply or b"50" in reply
        _at(ser, b"ATS7=45")
        assert b"045" in _at(ser, b"ATS7?") or b"45" in _at(ser, b"ATS7?")
        assert b"ERROR" in _at(ser, b"ATS7=999", b"ERROR")
        # Dial the local service: CONNECT with the rate and protocol suffix.
        connect = _at(ser, f"ATDT127.0.0.1:{bbs.port}".encode(), b"CONNECT", timeout=20)
        assert b"CONNECT 28800/ARQ/V34/LAPM/V42BIS" in connect
        greeting = read_until(ser, b"BBS\r\n", 10)
        assert b"WELCOME TO THE BBS" in greeting
        payload = bytes(range(256)) * 8  # every octet value, +++ never three in a row
        ser.write(payload)
        echoed = read_until(ser, payload[-16:], 20)
        assert payload in echoed
        assert bytes(bbs.received) == payload
        # The escape: one guard time of silence, +++, another guard time.
        time.sleep(1.2)
        ser.write(b"+++")
        assert b"OK" in read_until(ser, b"OK", 4)
        _at(ser, b"ATH")
    bbs.close()
    assert modem.wait_log("CONNECT 28800") and modem.wait_log("hangup")


def test_scheduled_carrier_loss_gives_no_carrier(fast_scenario, modem_on_pty):
    # The line drops 14 s after the modem starts; the dial is up after about 6 s.
    scenario = fast_scenario(link={"carrier_loss": {"at": ["14 s"]}})
    bbs = EchoServer()
    modem, path = modem_on_pty(scenario)
    with serial.Serial(str(path), 115200, timeout=0.2) as ser:
        _at(ser, b"AT")
        _at(ser, f"ATDT127.0.0.1:{bbs.port}".encode(), b"CONNECT", timeout=20)
        assert b"NO CARRIER" in read_until(ser, b"NO CARRIER", 20)
        # Back in command state.
        _at(ser, b"AT")
    bbs.close()


def test_dialing_the_scenario_number_reaches_the_simulated_isp(fast_scenario, modem_on_pty):
    modem, path = modem_on_pty(fast_scenario())
    with serial.Serial(str(path), 115200, timeout=0.2) as ser:
        _at(ser, b"AT")
        _at(ser, b"ATDT555-0123", b"CONNECT", timeout=20)
        # The ISP's PPP starts LCP at once: an HDLC frame of protocol 0xC021.
        frame = read_until(ser, b"~", 5) + read_until(ser, b"~", 5)
        assert b"\x7e\xff\x7d\x23\xc0\x21" in frame
        time.sleep(1.1)
        ser.write(b"+++")
        read_until(ser, b"OK", 4)
        _at(ser, b"ATH0")


def test_busy_and_no_answer(fast_scenario, modem_on_pty, tmp_path):
    closed = free_port()  # nothing listens here: the far end is busy
    modem, path = modem_on_pty(fast_scenario(link={"dial": {"carrier_wait": "8 s"}}))
    with serial.Serial(str(path), 115200, timeout=0.2) as ser:
        _at(ser, b"ATX4")
        assert b"BUSY" in _at(ser, f"ATDT127.0.0.1:{closed}".encode(), b"BUSY", timeout=20)
        # A number nobody answers rings until S7 runs out.
        _at(ser, b"ATS7=6")
        assert b"NO ANSWER" in _at(ser, b"ATDT5559999", b"NO ANSWER", timeout=30)
        _at(ser, b"ATX0")
        assert b"NO CARRIER" in _at(ser, f"ATDT127.0.0.1:{closed}".encode(), b"NO CARRIER",
                                    timeout=20)


def test_debian_chat_dials_and_gets_connect(fast_scenario, modem_on_pty):
    chat = require("chat", "Debian's chat is not installed (apt: ppp)")
    modem, path = modem_on_pty(fast_scenario())
    with open(path, "r+b", buffering=0) as tty:
        r = subprocess.run([chat, "-v", "-t", "25", "", "ATZ", "OK", "ATDT5550123", "CONNECT", ""],
                           stdin=tty, stdout=tty, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    assert modem.wait_log("CONNECT")


def test_listen_serves_the_modem_on_a_tcp_port(fast_scenario):
    bbs = EchoServer(b"HELLO\r\n")
    port = free_port()
    modem = ModemProcess([str(fast_scenario()), "--listen", f"127.0.0.1:{port}"], port=port)
    try:
        with socket.create_connection(("127.0.0.1", port), 5) as s:
            s.settimeout(0.2)
            f = _SocketPort(s)
            _at(f, b"AT")
            _at(f, f"ATDT127.0.0.1:{bbs.port}".encode(), b"CONNECT", timeout=20)
            assert b"HELLO" in read_until(f, b"HELLO", 10)
            f.write(b"ping\r\n")
            assert b"ping" in read_until(f, b"ping", 10)
            # A second emulator is turned away while the first holds the port.
            with socket.create_connection(("127.0.0.1", port), 5) as s2:
                s2.settimeout(3)
                assert s2.recv(10) == b""
    finally:
        modem.stop()
        bbs.close()


class _SocketPort:
    """Just enough of pyserial's interface over a socket for read_until/_at."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.in_waiting = 0

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int) -> bytes:
        try:
            return self.sock.recv(4096)
        except TimeoutError:
            return b""


@pytest.mark.skipif(shutil.which("true") is None, reason="no coreutils")
def test_bad_arguments_one_line(fast_scenario, tmp_path):
    r = subprocess.run(["python", "-m", "dialsim", "modem", str(fast_scenario()),
                        "--listen", "nonsense"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "file").write_text("x")
    r = subprocess.run(["python", "-m", "dialsim", "modem", str(fast_scenario()),
                        "--pty", str(tmp_path / "file")], capture_output=True, text=True)
    assert r.returncode == 2 and "not a symlink" in r.stderr
