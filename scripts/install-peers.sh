#!/usr/bin/env bash
# Install the real peers dialsim's interop tests run against (tests/interop/,
# facts in the interop README): slirp (SLIP/CSLIP/PPP), Dovecot POP3, fetchmail,
# mpop (POP3 with STLS), msmtp (SMTP with STARTTLS), swaks, tshark, socat, chat (ppp),
# gcc + libc headers (for slirp's select() fix), iproute2 (network namespaces for
# the TUN tests), libspandsp2 (spandsp's V.42bis, loaded with ctypes), chromium
# (headless, opens `dialsim report --html` pages).  Debian 12 package names.
#
# Idempotent and non-interactive: does nothing when every command is already
# present; never fails because Dovecot's service cannot start without systemd
# (service starts are suppressed with a temporary policy-rc.d, and a failed
# configure step is retried and then judged by what is actually installed).
# INSTALL_PEERS_FORCE=1 runs apt even when all is present.
# Python peers (aiosmtpd, getmail6) come from `pip install -e ".[test]"`.
set -euo pipefail

PACKAGES=(
    slirp dovecot-core dovecot-pop3d fetchmail mpop msmtp swaks tshark socat ppp
    gcc libc6-dev iproute2 libspandsp2 chromium
)

# command (or file, or shared library) -> what proves it is installed
have_all() {
    local missing=0
    for cmd in slirp socat dovecot doveadm fetchmail mpop msmtp swaks tshark chat gcc ip chromium; do
        if ! command -v "$cmd" >/dev/null 2>&1; then
            echo "install-peers: missing command: $cmd" >&2
            missing=1
        fi
    done
    for f in /usr/lib/dovecot/pop3 /usr/include/dlfcn.h; do
        if [ ! -e "$f" ]; then
            echo "install-peers: missing file: $f" >&2
            missing=1
        fi
    done
    for lib in libspandsp.so.2; do
        if ! ldconfig -p 2>/dev/null | grep -q "$lib"; then
            echo "install-peers: missing library: $lib" >&2
            missing=1
        fi
    done
    return "$missing"
}

export PATH="$PATH:/usr/sbin:/sbin"

if [ -z "${INSTALL_PEERS_FORCE:-}" ] && have_all 2>/dev/null; then
    echo "install-peers: all interop peers already installed"
else
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo -n"
        else
            echo "install-peers: not root and no sudo; cannot install ${PACKAGES[*]}" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive

    # tshark asks whether non-root users may capture: answer "no" up front
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | $SUDO debconf-set-selections

    # no service starts during install (no systemd here; dovecot's would fail)
    POLICY=/usr/sbin/policy-rc.d
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
        $SUDO chmod 755 "$POLICY"
        trap '$SUDO rm -f "$POLICY"' EXIT
    fi

    $SUDO apt-get update -qq
    if ! $SUDO apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${PACKAGES[@]}"; then
        echo "install-peers: apt-get install reported an error; finishing configuration" >&2
        $SUDO dpkg --configure -a || true
    fi

    if ! have_all; then
        echo "install-peers: some peers are still missing (see above)" >&2
        exit 1
    fi
    echo "install-peers: installed ${PACKAGES[*]}"
fi

# The non-root owner of the test Maildirs (Dovecot refuses to run mail as root);
# the fixtures create it too, and fall back to nobody/nogroup.
if [ "$(id -u)" -eq 0 ] && ! id dialsimtest >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin dialsimtest \
        || echo "install-peers: could not create user dialsimtest; tests use nobody" >&2
fi
exit 0
