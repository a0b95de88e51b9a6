"""`amorph predict` and `amorph compare`. No science here: parse, call, render."""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from amorph.cli import db as db_commands
from amorph.cli import potentials as potentials_command
from amorph.errors import AmorphError, SimulationError
from amorph.settings import Device, Engine, PredictionRule, RunSettings, Thermostat, flag

# Only light modules are imported above and before the input is checked: torch, matgl, chgnet and
# pandas take seconds, and a mistyped formula, number or path must be answered at once
# (benchmarks/cli_startup.py measures it).

app = typer.Typer(
    name="amorph",
    help="Predict which crystal polymorph first nucleates from an amorphous solid (a2c method).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



def _show_version(value: bool) -> None:
    if value:
        from amorph import __version__

        print(f"amorph {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", metavar="", help="Print amorph's version and exit.", callback=_show_version, is_eager=True)
    ] = False,
) -> None:
    """Predict which crystal polymorph first nucleates from an amorphous solid (a2c method)."""


app.add_typer(db_commands.app, name="db")
app.command("potentials")(potentials_command.potentials)

PANEL_MD = "Melt-quench MD"
PANEL_SUB = "Subcells and relaxation"


def _default_out(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("amorph-runs") / f"{kind}-{stamp}"


def _budget(text: str | None) -> tuple[bool | None, int | None]:
    """--max-subcells: a whole number, or 'auto' (adaptive, with the preset's budget as the ceiling)."""
    if text is None:
        return None, None
    if text.strip().lower() == "auto":
        return True, None
    try:
        return None, int(text)
    except ValueError:
        raise AmorphError(f"--max-subcells must be a whole number or 'auto', got '{text}'") from None


def _settings(formula: str, preset: str | None, potential: str, device: str, options: dict[str, Any]) -> RunSettings:
    """The preset's settings with the flags given (amorph.settings.apply_options), for predict and
    screen alike; no preset given: quick without a GPU, standard with one."""
    from amorph.md.potentials import resolve_device
    from amorph.settings import apply_options, preset_settings

    if preset is None:  # on a machine without a GPU driver this does not import torch
        preset = "standard" if resolve_device(device) == "cuda" else "quick"
    return apply_options(preset_settings(formula, preset, potential=potential, device=device), options)


@app.command()
def predict(
    formula: Annotated[str, typer.Argument(help="Chemical formula, e.g. TiO2.")],
    potential: Annotated[str, typer.Option(help=potentials_command.HELP_POTENTIAL)] = "auto",
    device: Annotated[Device, typer.Option(help=flag("--device").help)] = "auto",
    preset: Annotated[str | None, typer.Option(help=flag("--preset").help)] = None,
    seed: Annotated[int | None, typer.Option(help=flag("--seed").help)] = 0,
    db: db_commands.DbOption = None,
    atoms: Annotated[int | None, typer.Option(help=flag("--atoms").help, rich_help_panel=PANEL_MD)] = None,
    volume_factor: Annotated[float | None, typer.Option(help=flag("--volume-factor").help, rich_help_panel=PANEL_MD)] = None,
    grow_to: Annotated[int | None, typer.Option(help=flag("--grow-to").help, rich_help_panel=PANEL_MD)] = None,
    t_high: Annotated[float | None, typer.Option(help=flag("--t-high").help, rich_help_panel=PANEL_MD)] = None,
    t_low: Annotated[float | None, typer.Option(help=flag("--t-low").help, rich_help_panel=PANEL_MD)] = None,
    md_steps: Annotated[int | None, typer.Option(help=flag("--md-steps").help, rich_help_panel=PANEL_MD)] = None,
    ramp_factor: Annotated[float | None, typer.Option(help=flag("--ramp-factor").help, rich_help_panel=PANEL_MD)] = None,
    timestep: Annotated[float | None, typer.Option(help=flag("--timestep").help, rich_help_panel=PANEL_MD)] = None,
    replicas: Annotated[int | None, typer.Option(help=flag("--replicas").help, rich_help_panel=PANEL_MD)] = None,
    thermostat: Annotated[Thermostat | None, typer.Option(help=flag("--thermostat").help, rich_help_panel=PANEL_MD)] = None,
    friction: Annotated[float | None, typer.Option(help=flag("--friction").help, rich_help_panel=PANEL_MD)] = None,
    start_relax_steps: Annotated[int | None, typer.Option(help=flag("--start-relax-steps").help, rich_help_panel=PANEL_MD)] = None,
    d_frac: Annotated[float | None, typer.Option(help=flag("--d-frac").help, rich_help_panel=PANEL_SUB)] = None,
    n_min: Annotated[int | None, typer.Option(help=flag("--n-min").help, rich_help_panel=PANEL_SUB)] = None,
    n_max: Annotated[int | None, typer.Option(help=flag("--n-max").help, rich_help_panel=PANEL_SUB)] = None,
    max_subcells: Annotated[str | None, typer.Option(help=flag("--max-subcells").help, rich_help_panel=PANEL_SUB)] = None,
    more_if_inconclusive: Annotated[
        int | None, typer.Option(help=flag("--more-if-inconclusive").help, rich_help_panel=PANEL_SUB)
    ] = None,
    fmax: Annotated[float | None, typer.Option(help=flag("--fmax").help, rich_help_panel=PANEL_SUB)] = None,
    relax_steps: Annotated[int | None, typer.Option(help=flag("--relax-steps").help, rich_help_panel=PANEL_SUB)] = None,
    engine: Annotated[Engine | None, typer.Option(help=flag("--engine").help, rich_help_panel=PANEL_SUB)] = None,
    any_composition: Annotated[
        bool, typer.Option("--any-composition", metavar="", help=flag("--any-composition").help, rich_help_panel=PANEL_SUB)
    ] = False,
    all_sizes: Annotated[bool, typer.Option("--all-sizes", metavar="", help=flag("--all-sizes").help, rich_help_panel=PANEL_SUB)] = False,
    keep_cut_contacts: Annotated[
        bool, typer.Option("--keep-cut-contacts", metavar="", help=flag("--keep-cut-contacts").help, rich_help_panel=PANEL_SUB)
    ] = False,
    skip_potential_check: Annotated[
        bool, typer.Option("--skip-potential-check", metavar="", help=flag("--skip-potential-check").help)
    ] = False,
    rule: Annotated[PredictionRule | None, typer.Option(metavar="RULE", help=flag("--rule").help)] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory. Default: amorph-runs/<formula>-<UTC time>.")] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", metavar="", help="Continue the run in --out from its first missing stage (its settings must be these)."),
    ] = False,
    restart: Annotated[bool, typer.Option("--restart", metavar="", help="Remove the earlier run in --out and start it over.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print only the prediction.")] = False,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print report.json to stdout.")] = False,
) -> None:
    """Predict the first polymorph to crystallize from amorphous FORMULA."""
    from amorph.inputs import check_inputs
    from amorph.settings import override

    if resume and out is None:
        raise AmorphError("--resume needs --out DIR of the run to continue")
    if resume and restart:
        raise AmorphError("--resume continues a run and --restart starts it over: give one of them")
    if restart and out is None:
        raise AmorphError("--restart needs --out DIR of the run to start over")
    adaptive, budget = _budget(max_subcells)
    settings = _settings(formula, preset, potential, device, {
        "--seed": seed, "--db": tuple(db) if db else None, "--rule": rule, "--skip-potential-check": skip_potential_check,
        "--atoms": atoms, "--volume-factor": volume_factor, "--grow-to": grow_to,
        "--t-high": t_high, "--t-low": t_low, "--md-steps": md_steps, "--ramp-factor": ramp_factor, "--timestep": timestep,
        "--replicas": replicas, "--thermostat": thermostat, "--friction": friction, "--start-relax-steps": start_relax_steps,
        "--d-frac": d_frac, "--n-min": n_min, "--n-max": n_max, "--max-subcells": budget,
        "--more-if-inconclusive": more_if_inconclusive, "--any-composition": any_composition, "--all-sizes": all_sizes,
        "--keep-cut-contacts": keep_cut_contacts, "--fmax": fmax, "--relax-steps": relax_steps, "--engine": engine,
    })
    if adaptive:  # 'auto' stops by its own rule: the preset's reserve, if any, goes (one given is refused by validate)
        settings = override(settings, "subcells", adaptive=True, more_if_inconclusive=more_if_inconclusive or 0)
    run_dir = out or _default_out(formula.strip())
    check_inputs(settings, run_dir, resume, restart)  # before the heavy imports below
    _run_and_show(settings, run_dir, resume, restart, quiet, as_json)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The folder of a stopped `amorph predict` run.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print only the prediction.")] = False,
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print report.json to stdout.")] = False,
) -> None:
    """Continue a stopped run from its first missing stage, with the settings in its config.json."""
    from amorph.inputs import check_inputs

    check_inputs(None, run_dir, resume=True)
    _run_and_show(None, run_dir, True, False, quiet, as_json)


class Stopped(BaseException):
    """Ctrl-C or SIGTERM (a scheduler's preemption, `kill`): unwinds the run, so finished work is kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: object) -> None:
    raise Stopped(signum)


_RUNNING: list[tuple[Path, str]] = []  # the folder being written and how to go on, for the message after a stop


def _run_and_show(settings: RunSettings | None, run_dir: Path, resume: bool, restart: bool, quiet: bool, as_json: bool) -> None:
    """Run (or continue) a prediction and print it: progress on stderr, tables and answer on stdout."""
    from amorph.cli.render import RichProgress, polymorph_table, rules_table, similarity_notes, similarity_table, stderr, stdout
    from amorph.pipeline import execute, prepare
    from amorph.results.report import melt_quench_text, prediction_line

    run = prepare(settings, run_dir, resume=resume, restart=restart)
    _RUNNING.append((run_dir, f"`amorph resume {run_dir}`"))
    if quiet or as_json:
        from amorph.progress import SilentProgress

        report = execute(run, SilentProgress())
    else:
        stderr.print(
            f"[bold]amorph predict {run.formula.reduced}[/bold]  potential {run.potential.name} on {run.potential.device}, "
            f"preset {run.settings.preset}, seed {run.settings.seed}"
        )
        with RichProgress() as progress:
            report = execute(run, progress)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    if not quiet:
        stdout.print(polymorph_table(report))
        stdout.print(rules_table(report))
        if (closeness := similarity_table(report)) is not None:
            stdout.print(closeness)
            for line in similarity_notes(report):
                stdout.print(line, highlight=False)
        if text := melt_quench_text(report):
            stdout.print(text, style="bold yellow" if report["melt_quench"].get("warnings") else None, highlight=False)
        stdout.print(f"results in {run_dir}")
    stdout.print(prediction_line(report), highlight=False, soft_wrap=True)


@app.command()
def compare(
    target: Annotated[str, typer.Argument(help="A formula (e.g. TiO2) or the directory of a finished predict run.")],
    potential: Annotated[
        list[str] | None,
        typer.Option(help="Potential for a formula (a run directory uses its own); repeat it to see the energy ordering under "
                     "each, side by side. Default: auto."),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the potential runs.")] = "auto",
    fmax: Annotated[
        float,
        typer.Option(help="Force tolerance of the polymorphs' relaxation, eV/A; tighter than predict's 0.05 because an energy "
                     "ordering of a few meV/atom needs cells relaxed further than a subcell's identity does."),
    ] = 0.02,
    out: Annotated[Path | None, typer.Option(help="Where compare.csv/json go (formula mode).")] = None,
    db: db_commands.DbOption = None,
) -> None:
    """Energies of the known polymorphs under the potential, beside a run's shares when given a run."""
    from amorph.composition import parse_formula
    from amorph.matching.sources import check_sources
    from amorph.md.potentials import check_potential_spec
    from amorph.results import rundir as files
    from amorph.results.rundir import RunDir
    from amorph.settings import DEFAULT_DATABASES

    flag("--fmax").check(fmax)
    potentials = [p.strip() for p in potential or ["auto"]]
    try:
        as_run = Path(target).is_dir()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL: no folder
        as_run = False
    if as_run and potential:
        raise AmorphError(f"{target} is a run folder: it is compared under its own potential (drop --potential)")
    if len(set(potentials)) < len(potentials):
        raise AmorphError("a --potential is listed twice")
    sources = tuple(db) if db else DEFAULT_DATABASES
    if as_run:
        dest = RunDir(Path(target))
    else:
        if "/" in target or "\\" in target or target.startswith("."):  # meant as a folder, not a formula
            raise AmorphError(f"'{target}' is neither a run folder (no such directory) nor a chemical formula")
        parse_formula(target)
        for spec in potentials:
            check_potential_spec(spec)
        check_sources(sources)
        dest_path = out or _default_out(f"compare-{target.strip()}")
        RunDir.check_writable(dest_path, resume=False)
        dest = RunDir(dest_path)

    import pandas as pd

    from amorph.cli.render import RichProgress, compare_across_table, compare_table, similarity_notes, similarity_table, stdout
    from amorph.compare import compare_run, ordering_across, polymorph_energies

    closeness = None
    with RichProgress() as progress:
        if as_run:
            rows, used, closeness = compare_run(Path(target), device, progress)
        elif len(potentials) > 1:
            by_potential = {}  # the name each potential was loaded as -> its rows
            for spec in potentials:
                found, name = polymorph_energies(target, spec, device, fmax=fmax, progress=progress, sources=sources)
                by_potential[name] = found
        else:
            rows, used = polymorph_energies(target, potentials[0], device, fmax=fmax, progress=progress, sources=sources)
    dest.create()
    if not as_run and len(potentials) > 1:
        across = ordering_across(by_potential)
        dest.write_csv(files.COMPARE_CSV, pd.DataFrame([{"potential": p} | r for p, rows in by_potential.items() for r in rows]))
        dest.write_json(files.COMPARE_JSON, {"target": target, "potentials": list(by_potential), "by_potential": by_potential} | across)
        stdout.print(compare_across_table(by_potential))
        stdout.print(across["summary"], highlight=False)
        stdout.print(f"written {dest.file(files.COMPARE_CSV)} and {files.COMPARE_JSON}")
        return
    dest.write_csv(files.COMPARE_CSV, pd.DataFrame(rows))
    dest.write_json(files.COMPARE_JSON, {"target": target, "potential": used, "polymorphs": rows}
                    | ({"similarity": closeness} if closeness else {}))
    stdout.print(compare_table(rows, f"Known polymorphs under {used}"))
    if closeness and (shown := similarity_table({"similarity": closeness})) is not None:
        stdout.print(shown)
        for line in similarity_notes({"similarity": closeness}):
            stdout.print(line, highlight=False)
    stdout.print(f"written {dest.file(files.COMPARE_CSV)} and {files.COMPARE_JSON}")


@app.command()
def screen(
    formulas: Annotated[list[str] | None, typer.Argument(help="Formulas to screen, e.g. TiO2 ZrO2 HfO2.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="A file of formulas, one per line (# comments); a first line `formula,atoms,...` makes it a CSV "
                     "whose other columns (predict's flag names) override the preset per formula."),
    ] = None,
    potential: Annotated[
        list[str] | None,
        typer.Option(help="As for predict, for every formula; repeat it to run every formula under each potential and "
                     "see whether they agree. Default: auto."),
    ] = None,
    device: Annotated[Device, typer.Option(help="Where the potential runs; on cuda, one worker per GPU.")] = "auto",
    preset: Annotated[str | None, typer.Option(help="As for predict: quick without a GPU, standard with one.")] = None,
    seed: Annotated[int, typer.Option(help=flag("--seed").help)] = 0,
    db: db_commands.DbOption = None,
    rule: Annotated[
        PredictionRule | None,
        typer.Option(metavar="RULE", help="As for predict: most-frequent, lowest-energy or lowest-energy-known (the default)."),
    ] = None,
    thermostat: Annotated[Thermostat | None, typer.Option(help="As for predict, for every formula.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Screen folder (one run folder per formula inside). Default: amorph-runs/screen-<UTC time>.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Formulas run at once on this machine. Default: one per GPU, or per core up to the formulas.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler (e.g. tcp://node:8786) to use instead of a local cluster.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print only the summary line.")] = False,
) -> None:
    """Predict many formulas, each a task on Dask; run the same command again to resume."""
    from amorph.matching.sources import check_sources
    from amorph.md.potentials import check_potential_spec
    from amorph.results.rundir import RunDir
    from amorph.screen import check_items, read_items, screen_tasks
    from amorph.settings import validate

    items = read_items(formulas or [], file)
    potentials = [p.strip() for p in potential or ["auto"]]
    if workers is not None and workers < 1:
        raise AmorphError(f"--workers must be a positive number, got {workers}")
    base = _settings(items[0].formula, preset, potentials[0], device,
                     {"--seed": seed, "--db": tuple(db) if db else None, "--rule": rule, "--thermostat": thermostat})
    folder = out or _default_out("screen")
    if folder.exists() and not folder.is_dir():
        raise AmorphError(f"--out {folder} is not a directory")
    # what every formula shares is checked once, before any cluster starts; each formula's own
    # values are checked in its task, where a bad one fails that formula alone
    validate(base)
    check_items(items, base)  # every formula and every value of its line, before any cluster starts
    for spec in potentials:
        check_potential_spec(spec)
    screen_tasks(items, potentials)  # refuses a potential listed twice
    check_sources(base.databases)
    RunDir.check_can_write(folder)
    _screen_and_show(items, base, folder, scheduler, workers, quiet, potentials)


def _screen_and_show(items: list[Any], base: RunSettings, folder: Path, scheduler: str | None, workers: int | None, quiet: bool,
                     potentials: list[str]) -> None:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from amorph.cli.render import screen_table, stderr, stdout
    from amorph.screen import screen, wall_summary

    _RUNNING.append((folder, "the same `amorph screen` command again"))
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn(compact=True)]
    with Progress(*columns, console=stderr, disable=quiet) as progress:
        runs = len(items) * len(potentials)
        task = progress.add_task(f"Screen of {runs}: starting the cluster", total=runs)

        def on_row(row: dict[str, Any], finished: int, failed: int) -> None:
            running = min(runs - finished, workers or runs - finished)
            progress.update(task, completed=finished, description=f"Screen: {finished - failed} done, {running} running, {failed} failed")
            if row["status"] != "done":
                progress.console.print(f"[red]{escape(row['formula'])}: failed: {escape(row.get('error', ''))}[/red]", highlight=False)

        result = screen(items, base, folder, scheduler, workers, on_row, potentials)
    if not quiet:
        stdout.print(screen_table(result.rows))
        stdout.print(f"results in {folder} (screen.csv, screen.json, report.html)")
    stdout.print(wall_summary(result), highlight=False)
    failed = sum(r["status"] == "failed" for r in result.rows)
    if failed:  # a script or a batch job must see it: exit 1 (2 is for input refused before anything ran)
        stderr.print(f"amorph screen: {failed} of {len(result.rows)} failed (their errors are in screen.csv)", highlight=False)
        raise SystemExit(1)


def main() -> None:
    """Console entry point: every user error is one line on stderr and exit code 2."""
    import warnings

    # Ctrl-C and SIGTERM raise Stopped, not KeyboardInterrupt: typer turns KeyboardInterrupt into a
    # returned 130 that would end as exit code 0 here, and Stopped unwinds the same way (with-blocks
    # release the run's lock, stop the worker processes and close the progress bars)
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        with warnings.catch_warnings():  # called in-process (tests, notebooks): the caller's filters come back
            _set_warnings()
            _main()
    finally:  # and so do the caller's signal handlers
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _set_warnings() -> None:
    """Libraries (chgnet, matgl, pymatgen, torch) warn about their own internals on every call; a user
    reading the terminal cannot act on those, so they are hidden unless `python -W` or PYTHONWARNINGS
    asks for them. amorph's own warnings (errors.AmorphWarning) are always shown, one line each."""
    import warnings

    from amorph.errors import AmorphWarning

    if not sys.warnoptions:
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
    warnings.filterwarnings("always", category=AmorphWarning)
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
        if issubclass(category, AmorphWarning):
            print(f"amorph: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _main() -> None:
    try:
        app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt, Stopped) as stop:
        _say_stopped(stop)
    except SimulationError as err:
        print(f"amorph: simulation failed: {err}", file=sys.stderr)
        sys.exit(3)
    except AmorphError as err:
        print(f"amorph: error: {err}", file=sys.stderr)
        sys.exit(2)
    except click_exceptions.NoArgsIsHelpError as err:
        print(err.ctx.get_help() if err.ctx else err.format_message())
        sys.exit(0)
    except click_exceptions.UsageError as err:
        print(f"amorph: error: {err.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as err:
        sys.exit(err.exit_code)


def _say_stopped(stop: BaseException) -> None:
    """One line: what stopped the run, where its finished work is and how to go on; 130 for Ctrl-C
    (SIGINT), 143 for SIGTERM, as shells report them."""
    signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
    where = f"; finished work is in {_RUNNING[-1][0]}: continue with {_RUNNING[-1][1]}" if _RUNNING else ""
    print(f"amorph: stopped by {signal.Signals(signum).name}{where}", file=sys.stderr)
    sys.exit(128 + signum)


if __name__ == "__main__":
    main()
