"""Helpers for real-time tests: scenarios that are fast in model time, and the
`dialsim modem` command run as a user runs it (a subprocess on a real pty)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

FAST = {
    "name": "fast-line",
    "seed": 1,
    "framing": "ppp",
    "ppp": {"auth": "pap", "vj": True},
    "link": {
        "profile": "v34",
        "connect_rate": "28.8k",
        "phone_number": "555-0123",
        "dial": {"dial_tone_wait": "2 s", "post_dial_delay": ["0 s", "0 s"]},
        "handshake": "0.5 s",
    },
    "subscriber": {"user": "alice", "password": "tanstaaf"},
    "isp": {"domain": "isp.example", "maildrop": {"messages": 4, "attachments": 0}},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def fast_scenario(tmp_path):
    """``fast_scenario(**overrides) -> path`` of a scenario whose dial takes ~5 s."""

    def make(name: str = "fast.yaml", **over) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(_merge(FAST, over), sort_keys=False))
        return path

    return make


class ModemProcess:
    """`python -m dialsim modem ...` in a subprocess; its log is kept."""

    def __init__(self, args: list[str], ready_path: Path | None = None, port: int | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "dialsim", "modem", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if ready_path is not None and ready_path.is_symlink():
                return
            if port is not None and any("ready" in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("dialsim modem did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def log(self) -> str:
        return "".join(self.lines)

    def wait_log(self, text: str, timeout: float = 5.0) -> bool:
        """True once ``text`` shows in the log (the reader thread lags the process)."""
        end = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def modem_on_pty(tmp_path):
    """``modem_on_pty(scenario, *extra_args) -> (ModemProcess, pty path)``."""
    started: list[ModemProcess] = []

    def start(scenario: Path, *extra: str):
        path = tmp_path / f"ttyM{len(started)}"
        m = ModemProcess([str(scenario), "--pty", str(path), *extra], ready_path=path)
        started.append(m)
        return m, path

    yield start
    for m in started:
        m.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoServer:
    """A local TCP service (a stand-in for a telnet BBS): greets, then echoes."""

    def __init__(self, greeting: bytes = b"WELCOME TO THE BBS\r\n") -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.received = bytearray()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                conn.sendall(self.greeting)
                while data := conn.recv(4096):
                    self.received += data
                    conn.sendall(data)

    def close(self) -> None:
        self.sock.close()


def read_until(ser, token: bytes, timeout: float) -> bytes:
    """Read from a pyserial port until ``token`` appears (or the time is up)."""
    buf = b""
    end = time.monotonic() + timeout
    while token not in buf and time.monotonic() < end:
        buf += ser.read(ser.in_waiting or 1)
    return buf


__all__ = ["EchoServer", "ModemProcess", "free_port", "read_until"]
os.environ.setdefault("PYTHONUNBUFFERED", "1")
