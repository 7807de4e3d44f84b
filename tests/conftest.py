"""Test-suite settings shared by every folder.

Under CI, hypothesis runs derandomized (examples drawn from a fixed seed), so a
submission's CI result does not depend on luck; locally it explores freely and
keeps its example database.
"""

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_itemcollected(item):
    """Under pytest-xdist (``-n 2 --dist loadgroup``, pyproject's addopts) the tests
    on the wall clock -- real ptys, sockets, namespaces, peer processes, the
    mail host's latency and memory under load -- run
    one after the other on one worker, as they would alone: they share global
    things (the list of network namespaces the shell tests check, free ports),
    and mostly wait.  The virtual-time tests, which mostly compute, fill the
    other worker meanwhile."""
    # Marked as each test is collected: xdist reads the groups in its own
    # pytest_collection_modifyitems, which may run before a conftest's.
    parts = item.path.parts
    if "realtime" in parts or "interop" in parts or item.path.name.startswith("test_mailhost"):
        item.add_marker(pytest.mark.xdist_group("wallclock"))
