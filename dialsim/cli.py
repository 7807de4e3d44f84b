"""dialsim's command line.

    dialsim run SCENARIO [--out DIR] [--seed N] [--replications N] [--pcap] [--csv]
    dialsim validate SCENARIO [SCENARIO ...]
    dialsim sweep SCENARIO --vary KEY=V1,V2 [--vary ...] [--workers N]
    dialsim report RESULTS_DIR [--out DIR]
    dialsim mailhost --maildir DIR --accounts FILE [--pop3 H:P] [--smtp H:P]

A bad scenario stops with exit status 2 and one line ``file:line: field: problem``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


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


def cmd_run(args) -> int:
    from rich.console import Console

    from dialsim.experiment.run import run_scenario
    from dialsim.results.summary import render_summary

    sc = _load(args.scenario, seed=args.seed, replications=args.replications)
    out = Path(args.out) if args.out else Path("results") / sc.name
    try:  # fail before simulating, not after
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        print(f"dialsim: --out {out}: cannot write results there: {e.strerror or e}",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    console = Console(stderr=False)
    with _progress(console, args.quiet) as progress:
        task = progress.add_task(f"{sc.name}: replications", total=sc.replications)
        result = run_scenario(
            sc,
            out,
            pcap=args.pcap,
            csv=args.csv,
            on_replication_done=lambda _rep: progress.advance(task),
            argv=sys.argv,
        )
    if not args.quiet:
        console.print(render_summary(result.summary))
        console.print(f"results in [bold]{out}[/bold]")
    if result.summary.get("messages_lost", 0):
        console.print(f"[red]{result.summary['messages_lost']} message(s) lost[/red]")
    return 0


def cmd_sweep(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from dialsim.experiment.sweep import parse_vary, run_sweep, sweep_points
    from dialsim.scenario.errors import ScenarioError

    sc = _load(args.scenario, seed=args.seed, replications=args.replications)
    try:
        varies = [parse_vary(v) for v in args.vary]
        n_points = len(sweep_points(sc, varies))
    except ScenarioError as e:
        print(f"dialsim: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-sweep"
    console = Console()
    with _progress(console, args.quiet) as progress:
        task = progress.add_task(f"{sc.name}: sweep points", total=n_points)
        summary = run_sweep(sc, varies, out, workers=args.workers,
                            on_point_done=lambda: progress.advance(task))
    if not args.quiet:
        table = Table(title=f"{sc.name}: {n_points} point(s) x {sc.replications} replication(s)")
        keys = summary["varied"]
        for k in keys:
            table.add_column(k)
        for col in ("time to retrieve all (mean)", "goodput B/s (mean)", "lost", "duplicated"):
            table.add_column(col, justify="right")
        for p in summary["points"]:
            m = p["metrics"]
            t_all = (m.get("time_to_retrieve_all_s") or {}).get("mean")
            gp = (m.get("goodput_Bps") or {}).get("mean")
            table.add_row(*[str(p[k]) for k in keys],
                          "-" if t_all is None else f"{t_all:,.1f} s",
                          "-" if gp is None else f"{gp:,.0f}",
                          str(p["messages_lost"]), str(p["messages_duplicated"]))
        console.print(table)
        console.print(f"results in [bold]{out}[/bold]")
    return 0


def cmd_validate(args) -> int:
    for path in args.scenarios:
        sc = _load(path)
        print(f"{path}: ok ({sc.name}, {sc.replications} replication(s), framing {sc.framing})")
    return 0


def cmd_report(args) -> int:
    import json

    from rich.console import Console

    from dialsim.results.plots import plot_command_timeline, plot_phases
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
    plot_phases(tables["sessions"], out / "phases.png")
    plot_command_timeline(tables["commands"], replication=args.replication, path=out / "commands.png")
    console.print(f"plots: [bold]{out / 'phases.png'}[/bold], [bold]{out / 'commands.png'}[/bold]")
    return 0


# Commands defined in this module; the others' modules (mailhost, modem) import
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
    sw.add_argument("-q", "--quiet", action="store_true")
    sw.set_defaults(func=cmd_sweep)

    rp = sub.add_parser("report", help="summary and plots from a results folder")
    rp.add_argument("results")
    rp.add_argument("--out", help="where to write the plots (default: the results folder)")
    rp.add_argument("--replication", type=int, default=0, help="replication for the command timeline")
    rp.set_defaults(func=cmd_report)

    if all_commands:
        from dialsim.cli_mailhost import add_subcommand as add_mailhost

        add_mailhost(sub)

        from dialsim.commands import modem

        modem.add_subcommand(sub)

    v = sub.add_parser("validate", help="check scenario files")
    v.add_argument("scenarios", nargs="+")
    v.set_defaults(func=cmd_validate)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(all_commands=command not in _OWN_COMMANDS).parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
