"""A private Linux network namespace with a TUN device as its only interface.

``dialsim shell`` puts a program in such a namespace: the kernel's own TCP/IP
inside it sends every datagram to the TUN device, and dialsim reads them off the
device's descriptor (``IFF_TUN | IFF_NO_PI``: one raw IPv4 datagram per read and
write; Linux ``Documentation/networking/tuntap.rst``).  Names inside resolve
through ``/etc/netns/NAME/hosts``, which ``ip netns exec`` binds over
``/etc/hosts``.

The device is created from a thread that joined the namespace with
``setns(CLONE_NEWNET)`` (which changes only the calling thread); the descriptor
then belongs to the namespace for life, usable from any thread.  Everything
made here is removed by :meth:`NetNamespace.delete`, which is safe to call twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import struct
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NetNamespace", "NetnsError", "call_in_netns", "check_can_create", "open_tun"]

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(Exception):
    """A one-line reason why the namespace cannot be made, and how to get it."""


def check_can_create() -> None:
    """Refuse early, in one line each: not root, no ``ip``, no TUN device."""
    if os.geteuid() != 0:
        raise NetnsError("dialsim shell needs root for a network namespace and a TUN device; "
                         "run it with sudo")
    if shutil.which("ip") is None:
        raise NetnsError("the 'ip' command is missing; install iproute2 (apt install iproute2)")
    if not os.path.exists("/dev/net/tun"):
        raise NetnsError("/dev/net/tun is missing: load the tun module (modprobe tun) or give "
                         "the container the device (--device /dev/net/tun)")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns(CLONE_NEWNET): {os.strerror(e)}")


def call_in_netns(name: str, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
    """``fn(*args)`` in a fresh thread that joined namespace ``name``; its result or error."""
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            nsfd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(nsfd)
            finally:
                os.close(nsfd)
            result["value"] = fn(*args)
        except BaseException as e:  # handed to the caller
            result["error"] = e

    t = threading.Thread(target=body, name=f"netns-{name}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"call_in_netns({name}) did not finish in {timeout} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def open_tun(ifname: str) -> int:
    """A non-blocking TUN descriptor for device ``ifname`` (in the caller's namespace)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    os.set_blocking(fd, False)
    return fd


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {r.stderr.strip() or 'failed'}")


class NetNamespace:
    """``dialsim-<random>`` with ``lo`` up and a TUN device ``ifname`` (down until
    :meth:`link_up`)."""

    def __init__(self, *, ifname: str = "ppp0", hosts: dict[str, list[str]] | None = None,
                 prefix: str = "dialsim") -> None:
        check_can_create()
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ifname = ifname
        self.fd = -1
        self.etc = Path("/etc/netns") / self.name
        try:
            _ip("netns", "add", self.name)
        except NetnsError as e:
            raise NetnsError(f"cannot create a network namespace ({e}); a container needs "
                             "CAP_SYS_ADMIN (docker run --privileged)") from None
        try:
            self.etc.mkdir(parents=True, exist_ok=True)
            lines = ["127.0.0.1 localhost", *(f"{a} {' '.join(n)}" for a, n in (hosts or {}).items())]
            (self.etc / "hosts").write_text("\n".join(lines) + "\n")
            (self.etc / "resolv.conf").write_text("# dialsim shell: names are in /etc/hosts\n")
            self.fd = call_in_netns(self.name, open_tun, ifname)
            _ip("-n", self.name, "link", "set", "lo", "up")
            # No IPv6 on the dial-up link, as in 1996: no housekeeping packets on the line.
            subprocess.run(["ip", "netns", "exec", self.name, "sysctl", "-qw",
                            f"net.ipv6.conf.{ifname}.disable_ipv6=1"],
                           capture_output=True, timeout=20, check=False)
        except BaseException:
            self.delete()
            raise

    def link_up(self, local: str, peer: str, mtu: int) -> None:
        """IPCP (or SLIP) is up: the device gets ``local`` with ``peer`` at the far end,
        the route to everywhere goes through it."""
        n, dev = self.name, self.ifname
        _ip("-n", n, "link", "set", dev, "mtu", str(mtu))
        _ip("-n", n, "addr", "flush", "dev", dev)
        _ip("-n", n, "addr", "add", local, "peer", peer, "dev", dev)
        _ip("-n", n, "link", "set", dev, "up")
        _ip("-n", n, "route", "replace", "default", "dev", dev)

    def link_down(self) -> None:
        """The modem hung up: the interface goes down, its routes with it."""
        with contextlib.suppress(NetnsError):
            _ip("-n", self.name, "link", "set", self.ifname, "down")

    def argv(self, argv: list[str], *, uid: int | None = None, gid: int | None = None) -> list[str]:
        """``argv`` run inside the namespace (as ``uid``/``gid`` when given)."""
        prefix = ["ip", "netns", "exec", self.name]
        if uid is not None:
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid if gid is not None else uid}",
                       "--init-groups", "--"]
        return [*prefix, *argv]

    def delete(self) -> None:
        """Remove the device, the namespace and its /etc/netns folder (idempotent)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20,
                       check=False)
        shutil.rmtree(self.etc, ignore_errors=True)
