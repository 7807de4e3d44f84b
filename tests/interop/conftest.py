"""pytest fixtures for interop tests against real peers (see peers.py and
/work/shared/interop/README.md): slirp (RFC 1055 SLIP / RFC 1661-1662 PPP) on a pty
pair, Dovecot POP3 (RFC 1939), the Linux kernel's TCP/IP behind TUN in a network
namespace, spandsp's V.42bis (ITU-T V.42bis, through ctypes: spandsp.py), and
availability of fetchmail, getmail6, mpop, msmtp, swaks, tshark and aiosmtpd.

Every fixture skips with a clear reason when its peer is missing, and fails instead
when the environment variable CI is non-empty.  Teardown always runs (process
groups are killed, namespaces deleted, scratch folders removed).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from . import peers, spandsp


@pytest.fixture(scope="session")
def selectfix_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the compiled LD_PRELOAD select() fix for slirp (built once per session)."""
    peers.require("slirp", "slirp is not installed (apt: slirp)")
    return peers.build_selectfix(tmp_path_factory.mktemp("selectfix"))


@pytest.fixture
def slirp_pty(
    selectfix_so: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., peers.SlirpLine]]:
    """Factory: ``slirp_pty(mode="slip"|"ppp", args=())`` -> a running
    :class:`peers.SlirpLine`.  All lines started are torn down after the test."""
    lines: list[peers.SlirpLine] = []

    def start(mode: str = "slip", args: tuple = ()) -> peers.SlirpLine:
        line = peers.start_slirp(
            mode, tmp_path_factory.mktemp(f"slirp-{mode}"), selectfix_so, args=args
        )
        lines.append(line)
        return line

    try:
        yield start
    finally:
        for line in lines:
            line.close()


@pytest.fixture
def dovecot() -> Iterator[peers.Dovecot]:
    """A private Dovecot POP3 server on 127.0.0.1:<free port>, user ``subscriber``,
    password ``dialup-pw``, an empty Maildir; ``dovecot.deliver(bytes)`` adds mail."""
    server = peers.start_dovecot()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture
def tun_netns() -> Iterator[peers.TunNamespace]:
    """A TUN fd whose far end is the kernel (10.99.0.1/24) in a fresh namespace;
    dialsim's side is 10.99.0.2.  Namespace and children removed afterwards."""
    tun = peers.start_tun_netns()
    try:
        yield tun
    finally:
        tun.close()


@pytest.fixture
def fetchmail_bin() -> str:
    return peers.require_fetchmail()


@pytest.fixture
def getmail_bin() -> str:
    return peers.require_getmail()


@pytest.fixture
def mpop_bin() -> str:
    return peers.require_mpop()


@pytest.fixture
def msmtp_bin() -> str:
    return peers.require_msmtp()


@pytest.fixture
def swaks_bin() -> str:
    return peers.require_swaks()


@pytest.fixture
def tshark_bin() -> str:
    return peers.require_tshark()


@pytest.fixture
def aiosmtpd_mod():
    return peers.require_aiosmtpd()


@pytest.fixture(scope="session")
def spandsp_lib():
    """Debian's libspandsp2 with its V.42bis prototypes (see spandsp.py)."""
    return spandsp.load()
