"""dialsim on a real Dask cluster, started the way an operator starts one:
``dask scheduler`` and ``dask worker`` processes on loopback
(docs/capacity.md, README "Scale").

Replications and sweep points are tasks; the workers hand back Arrow tables and
this process writes the results folder, so the tables (and captures) equal
those of a serial run.  A worker killed mid-sweep loses no point: its task runs
again elsewhere.  Speed (two workers against one) is measured by
benchmarks/bench_cluster.py, not here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from dialsim.experiment.run import run_scenario
from dialsim.experiment.sweep import parse_vary, run_sweep
from dialsim.results.tables import read_tables
from dialsim.scenario.load import load_scenario

from . import peers

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("sessions", "commands", "messages", "link_events")


class Cluster:
    """A scheduler and named workers, each its own process group (killed at the end)."""

    def __init__(self, folder: Path) -> None:
        self.dask = peers.require("dask", "dask's command line is not installed "
                                          "(pip install 'dialsim[distributed]')")
        peers.require_module("distributed", "dask.distributed is not installed "
                                            "(pip install 'dialsim[distributed]')")
        self.folder = folder
        # The workers must import this checkout's dialsim, as an operator installs it.
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.procs: dict[str, subprocess.Popen] = {}
        info = folder / "scheduler.json"
        self._start("scheduler", [self.dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(info)])
        deadline = time.monotonic() + 60
        while not (info.exists() and info.stat().st_size):
            assert time.monotonic() < deadline, self.log("scheduler")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole before the scheduler listens
        self.address = json.loads(info.read_text())["address"]

    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 (kept for the process)
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)

    def add_worker(self, name: str) -> None:
        self._start(name, [self.dask, "worker", self.address, "--name", name, "--nworkers", "1",
                           "--nthreads", "1", "--no-dashboard",
                           "--local-directory", str(self.folder / name)])

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n, timeout=120)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]

    def close(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        for name in ("w0", "w1"):
            c.add_worker(name)
        c.wait_for_workers(2)
        yield c
    finally:
        c.close()


def _assert_same_tables(a: Path, b: Path, names=TABLES) -> None:
    ta, tb = read_tables(a), read_tables(b)
    for name in names:
        pd.testing.assert_frame_equal(ta[name], tb[name])


def test_run_on_the_cluster_equals_a_serial_run(cluster, tmp_path):
    path = ROOT / "scenarios" / "slow-2400.yaml"
    r = subprocess.run([sys.executable, "-m", "dialsim.cli", "run", str(path), "--replications",
                        "3", "--pcap", "--scheduler", cluster.address, "--out",
                        str(tmp_path / "cluster"), "-q"], capture_output=True, text=True,
                       env=cluster.env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    serial = run_scenario(load_scenario(path).with_overrides(replications=3),
                          tmp_path / "serial", pcap=True)
    assert serial.summary["messages_lost"] == 0
    _assert_same_tables(tmp_path / "cluster", tmp_path / "serial")
    for rep in range(3):  # the captures came back from the workers too
        name = f"line-rep{rep}.pcapng"
        assert (tmp_path / "cluster" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    a = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    b = json.loads((tmp_path / "serial" / "summary.json").read_text())
    assert a["metrics"] == b["metrics"] and a["seeds"] == b["seeds"]


def test_population_sweep_on_the_cluster_equals_a_serial_sweep(cluster, tmp_path):
    sc = load_scenario(ROOT / "scenarios" / "isp-busy-hour.yaml").with_overrides(
        {"population.subscribers": 10, "duration": "6 h"})
    varies = [parse_vary("population.lines=1,3"), parse_vary("seed=1,2")]
    run_sweep(sc, varies, tmp_path / "cluster", scheduler=cluster.address)
    run_sweep(sc, varies, tmp_path / "serial")
    _assert_same_tables(tmp_path / "cluster", tmp_path / "serial")
    for name in ("lines", "hours", "subscribers", "points"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cluster" / f"{name}.parquet"),
                                      pd.read_parquet(tmp_path / "serial" / f"{name}.parquet"))


def test_a_worker_killed_mid_sweep_loses_no_point(cluster, tmp_path):
    from distributed import Client

    sc = load_scenario(ROOT / "scenarios" / "slow-2400.yaml").with_overrides(replications=1)
    varies = [parse_vary("link.profile=v22bis,v32bis"), parse_vary("seed=1,2,3,4")]
    outcome: dict = {}

    def sweep() -> None:
        try:
            outcome["summary"] = run_sweep(sc, varies, tmp_path / "cluster",
                                           scheduler=cluster.address)
        except BaseException as e:  # noqa: BLE001 (reported below)
            outcome["error"] = e

    runner = threading.Thread(target=sweep)
    with Client(cluster.address, timeout="60s") as client:
        victim = next(addr for addr, w in client.scheduler_info()["workers"].items()
                      if w["name"] == "w0")
        runner.start()
        deadline = time.monotonic() + 300
        while not client.processing().get(victim):  # w0 is running a point now
            assert runner.is_alive() and time.monotonic() < deadline, "w0 never got a task"
            time.sleep(0.02)
        lost = list(client.processing()[victim])
        cluster.kill("w0")
        runner.join(timeout=900)

        def started(dask_scheduler, keys=tuple(lost)):
            return {str(k): sum(1 for t in dask_scheduler.transition_log
                                if t[0] == k and t[2] == "processing") for k in keys}

        runs = client.run_on_scheduler(started)
    assert "error" not in outcome, outcome.get("error")
    assert len(outcome["summary"]["points"]) == 8
    assert runs and all(n >= 2 for n in runs.values()), runs  # w0's task ran again
    run_sweep(sc, varies, tmp_path / "serial")
    _assert_same_tables(tmp_path / "cluster", tmp_path / "serial")
