"""The wall-clock tests share global things (the host's network namespaces,
free ports) and must run one at a time: under pytest-xdist they are one group
(tests/conftest.py).  If a pytest or xdist upgrade drops the grouping, this
says so instead of the shell tests failing in odd ways."""

import os


def test_wall_clock_tests_run_as_one_xdist_group(request):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return  # one process: nothing to group
    assert request.node.nodeid.endswith("@wallclock"), request.node.nodeid
