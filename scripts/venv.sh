# Source me from the repository root:  . scripts/venv.sh
#
# Creates (once) and activates .venv, dialsim's own virtual environment, so the
# README's commands work on any Debian 12: its system Python refuses `pip
# install` (PEP 668, "externally managed") and ships without the venv module,
# and dialsim's V.42bis coder is a C extension that needs gcc and the Python
# headers.  Whatever of python3-venv, python3-dev and gcc is missing is
# installed with apt first (as root, or through sudo).  An environment that is
# already active (a venv, a conda env) is used as it is.
#
# Sourced, not run: it must not `exit` or `set -e` the caller's shell.

_dialsim_venv() {
    local root=.venv py=python3 missing=""
    if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
        return 0
    fi
    if [ ! -x "$root/bin/python" ]; then
        "$py" -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
        "$py" -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
            || missing="$missing python3-dev"
        command -v gcc >/dev/null 2>&1 || missing="$missing gcc"
        if [ -n "$missing" ]; then
            local sudo=""
            [ "$(id -u)" -eq 0 ] || sudo="sudo"
            echo "venv.sh: installing$missing (apt)" >&2
            DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq \
                && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null \
                || { echo "venv.sh: could not install$missing" >&2; return 1; }
        fi
        "$py" -m venv "$root" || { echo "venv.sh: python3 -m venv $root failed" >&2; return 1; }
    fi
    . "$root/bin/activate"
}

_dialsim_venv
