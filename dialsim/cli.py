"""dialsim's command line.

    dialsim run SCENARIO [--out DIR] [--seed N] [--replications N] [--pcap] [--csv]
                          [--scheduler ADDRESS]  (a scenario with a ``sweep:`` block runs as a sweep)
    dialsim validate SCENARIO [SCENARIO ...]
    dialsim sweep SCENARIO --vary KEY=V1,V2 [--vary ...] [--workers N | --scheduler ADDRESS]
    dialsim report RESULTS_DIR [--out DIR] [--html]
    dialsim mailhost --maildir DIR --accounts FILE [--pop3 H:P] [--smtp H:P]

A bad scenario stops with exit status 2 and one line ``file:line: field: problem``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from functools import partial
from pathlib import Path

EXIT_BAD_INPUT = 2
SCHEDULER_HELP = ("run replications as tasks on this dask.distributed scheduler "
                  "(e.g. tcp://10.0.0.5:8786; needs the 'distributed' extra)")


def _load(path: str, **overrides):
    from dialsim.scenario.load import ScenarioError, load_scenario

    try:
        sc = load_scenario(Path(path))
        if any(v is not None for v in overrides.values()):
            sc = sc.with_overrides(**{k: v for k, v in overrides.items() if v is not None})
        return sc
    except ScenarioError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except FileNotFoundError:
        print(f"dialsim: {path}: no such scenario file", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except OSError as e:
        print(f"dialsim: {path}: cannot read scenario: {e.strerror or e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def _progress(console, quiet: bool):
    """The progress bar of long commands (rich): what, how far, how long."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet,
    )


@contextlib.contextmanager
def _cluster_errors():
    """A cluster that cannot be used (--scheduler): one line, exit status 2."""
    from dialsim.experiment.engine import ClusterError

    try:
        yield
    except ClusterError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


def _writable(out: Path) -> bool:
    try:  # fail before simulating, not after
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        print(f"dialsim: --out {out}: cannot write results there: {e.strerror or e}",
              file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def _start_up():
    """Around the imports and the scenario's validation: what they make lives as
    long as the process.  The cyclic GC is off meanwhile and then leaves those
    objects alone (``gc.freeze``), so the run's collections walk only the
    run's own objects: without this, the collections over the 400 000 or so
    objects of the imports took about a tenth of a quickstart run."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def cmd_run(args) -> int:
    with _start_up():
        from dialsim.experiment.run import run_scenario

        sc = _load(args.scenario, seed=args.seed, replications=args.replications)
    if args.pcap and sc.population is not None:
        print(f"dialsim: {args.scenario}: --pcap captures one line; a population has many",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / sc.name
    if not _writable(out):
        return EXIT_BAD_INPUT
    if sc.sweep:
        return _run_sweep(sc, [], out, workers=1, scheduler=args.scheduler, quiet=args.quiet)
    run = partial(run_scenario, sc, out, pcap=args.pcap, csv=args.csv, argv=sys.argv,
                  scheduler=args.scheduler)
    if args.quiet:  # no progress bar, no summary: rich is not even imported
        with _cluster_errors():
            result = run()
    else:
        result = _run_shown(sc, out, run)
    if result.summary.get("messages_lost", 0):
        _console().print(f"[red]{result.summary['messages_lost']} message(s) lost[/red]")
    return 0


def _console():
    from rich.console import Console

    return Console()


def _run_shown(sc, out: Path, run):
    """``run()`` under a progress bar, then the summary printed."""
    from dialsim.results.summary import render_summary

    console = _console()
    with _progress(console, False) as progress, _cluster_errors():
        task = progress.add_task(f"{sc.name}: replications", total=sc.replications)
        result = run(on_replication_done=lambda _rep: progress.advance(task))
    console.print(render_summary(result.summary))
    if "capacity" in result.summary:
        from dialsim.results.capacity import render_hours

        console.print(render_hours(result.summary["capacity"]))
    console.print(f"results in [bold]{out}[/bold]")
    return result


def cmd_sweep(args) -> int:
    with _start_up():
        from dialsim.experiment.sweep import parse_vary
        from dialsim.scenario.errors import ScenarioError

        sc = _load(args.scenario, seed=args.seed, replications=args.replications)
    try:
        varies = [parse_vary(v) for v in args.vary]
        sc.sweep_points(varies)
    except ScenarioError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-sweep"
    return _run_sweep(sc, varies, out, workers=args.workers, scheduler=args.scheduler,
                      quiet=args.quiet)


def _run_sweep(sc, varies, out: Path, *, workers: int, scheduler: str | None,
               quiet: bool) -> int:
    """Run a sweep under progress bars (points; the current point's replications)
    and print the comparison table."""
    from rich.console import Console

    from dialsim.experiment.sweep import run_sweep

    n_points = len(sc.sweep_points(varies))
    console = Console()
    with _progress(console, quiet) as progress, _cluster_errors():
        points = progress.add_task(f"{sc.name}: sweep points", total=n_points)
        one_by_one = workers <= 1 and scheduler is None
        reps = progress.add_task("point", total=sc.replications, visible=one_by_one)

        def start(i: int, settings: dict) -> None:
            shown = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in settings.items())
            progress.reset(reps, total=sc.replications, description=f"point {i}: {shown}")

        summary = run_sweep(sc, varies, out, workers=workers, scheduler=scheduler,
                            on_point_done=lambda: progress.advance(points),
                            on_point_start=start if one_by_one else None,
                            on_replication_done=(lambda _rep: progress.advance(reps))
                            if one_by_one else None)
    if not quiet:
        console.print(comparison_table(summary, n_points, sc.replications))
        console.print(f"results in [bold]{out}[/bold]")
    if summary.get("messages_lost", 0):
        console.print(f"[red]{summary['messages_lost']} message(s) lost[/red]")
    return 0


def comparison_table(summary: dict, n_points: int, replications: int):
    """One row per sweep point: the varied values, then the means that compare strategies."""
    from rich.table import Table

    table = Table(title=f"{summary['scenario']}: {n_points} point(s) x {replications} replication(s)")
    keys = summary["varied"]
    for k in keys:
        table.add_column(k)
    cols = (("time to retrieve all (mean)", "time_to_retrieve_all_s", "{:,.1f} s"),
            ("goodput B/s (mean)", "goodput_Bps", "{:,.0f}"),
            ("online (mean)", "online_time_s", "{:,.0f} s"),
            ("phone cost (mean)", "phone_cost", "{:,.2f}"),
            ("wasted octets (mean)", "octets_wasted", "{:,.0f}"))
    for title, _m, _f in cols:
        table.add_column(title, justify="right")
    table.add_column("lost", justify="right")
    table.add_column("duplicated", justify="right")
    pool = any("blocking_probability" in p for p in summary["points"])
    if pool:  # a population: how many calls heard busy
        table.add_column("blocking", justify="right")
    for p in summary["points"]:
        m = p["metrics"]
        cells = []
        for _t, metric, fmt in cols:
            v = (m.get(metric) or {}).get("mean")
            cells.append("-" if v is None else fmt.format(v))
        cells += [str(p["messages_lost"]), str(p["messages_duplicated"])]
        if pool:
            b = p.get("blocking_probability")
            cells.append("-" if b is None else f"{b:.3f}")
        table.add_row(*[str(p[k]) for k in keys], *cells)
    return table


def cmd_validate(args) -> int:
    for path in args.scenarios:
        sc = _load(path)
        print(f"{path}: ok ({sc.name}, {sc.replications} replication(s), framing {sc.framing})")
    return 0


def cmd_report(args) -> int:
    import json

    from rich.console import Console

    from dialsim.analysis.plots import plot_command_timeline, plot_phases
    from dialsim.results.summary import render_summary
    from dialsim.results.tables import read_tables

    folder = Path(args.results)
    if not (folder / "sessions.parquet").exists():
        print(f"dialsim: {folder}: not a results folder (no sessions.parquet)", file=sys.stderr)
        return EXIT_BAD_INPUT
    tables = read_tables(folder)
    console = Console()
    summary_path = folder / "summary.json"
    if summary_path.exists():
        console.print(render_summary(json.loads(summary_path.read_text())))
    out = Path(args.out) if args.out else folder
    out.mkdir(parents=True, exist_ok=True)
    plot_phases(tables["sessions"], path=out / "phases.png")
    plot_command_timeline(tables["commands"], replication=args.replication, path=out / "commands.png")
    console.print(f"plots: [bold]{out / 'phases.png'}[/bold], [bold]{out / 'commands.png'}[/bold]")
    if args.html:
        from dialsim.analysis.report import write_html_report

        page = write_html_report(folder, out / "report.html")
        console.print(f"report: [bold]{page}[/bold]")
    return 0


# Commands defined in this module; the others' modules (mailhost, modem, dial, serve,
# doctor, shell) import
# asyncio, ssl and sockets, which a run or a sweep does not need.
_OWN_COMMANDS = frozenset({"run", "sweep", "report", "validate"})


def build_parser(*, all_commands: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dialsim", description="Dial-up remote access simulator")
    from dialsim import __version__

    p.add_argument("--version", action="version", version=f"dialsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a scenario and write its results tables")
    r.add_argument("scenario")
    r.add_argument("--out", help="results directory (default results/<scenario name>/)")
    r.add_argument("--seed", type=int)
    r.add_argument("--replications", type=int)
    r.add_argument("--pcap", action="store_true", help="write the serial line's frames as pcap")
    r.add_argument("--csv", action="store_true", help="also write CSV tables")
    r.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    r.add_argument("-q", "--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    sw = sub.add_parser("sweep", help="run a scenario over the product of some keys' values")
    sw.add_argument("scenario")
    sw.add_argument("--vary", action="append", required=True, metavar="KEY=V1,V2,...",
                    help="a dotted scenario key and its values, e.g. link.profile=v22bis,v34")
    sw.add_argument("--out", help="results directory (default results/<scenario name>-sweep/)")
    sw.add_argument("--seed", type=int)
    sw.add_argument("--replications", type=int)
    sw.add_argument("--workers", type=int, default=1, help="parallel Dask worker processes")
    sw.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    sw.add_argument("-q", "--quiet", action="store_true")
    sw.set_defaults(func=cmd_sweep)

    rp = sub.add_parser("report", help="summary and plots from a results folder")
    rp.add_argument("results")
    rp.add_argument("--out", help="where to write the plots (default: the results folder)")
    rp.add_argument("--replication", type=int, default=0, help="replication for the command timeline")
    rp.add_argument("--html", action="store_true",
                    help="also write report.html: one self-contained page with every plot")
    rp.set_defaults(func=cmd_report)

    if all_commands:
        from dialsim.cli_mailhost import add_subcommand as add_mailhost

        add_mailhost(sub)

        from dialsim.commands import dial, doctor, modem, serve, shell

        modem.add_subcommand(sub)
        dial.add_subcommand(sub)
        serve.add_subcommand(sub)
        doctor.add_subcommand(sub)
        shell.add_subcommand(sub)

    v = sub.add_parser("validate", help="check scenario files")
    v.add_argument("scenarios", nargs="+")
    v.set_defaults(func=cmd_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after "--" is a program to run (dialsim shell ... -- COMMAND ARGS),
    # kept out of argparse, whose subparsers do not pass "--" through.
    tail = None
    if "--" in argv:
        i = argv.index("--")
        argv, tail = argv[:i], argv[i + 1:]
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(all_commands=command not in _OWN_COMMANDS)
    args = parser.parse_args(argv)
    if tail is not None:
        if not hasattr(args, "command"):
            parser.error(f"unexpected '--' for {argv[0] if argv else 'dialsim'}")
        args.command = tail
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
