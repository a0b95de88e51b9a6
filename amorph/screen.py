"""`amorph screen`: many formulas, each its own `amorph predict` run, as tasks on Dask distributed.

* One task per formula. Replicas of a formula stay inside its task: the batched engine runs them
  as one batch of MD (md.batched_md), which costs far less than one task each.
* The cluster: by default a LocalCluster on this machine: one worker per GPU (each seeing only its
  own, through CUDA_VISIBLE_DEVICES), or on a CPU min(formulas, cores) workers that share the cores
  out (each task given its share: md.parallel_relax.core_budget). `--scheduler ADDRESS` uses a running cluster
  instead (dask-jobqueue on SLURM, say), whose workers must see the --out folder.
* Each formula's run folder is `<out>/<formula>`; a finished one holds screen_row.json, its line of
  the summary. Running the same screen again takes those as they are, resumes the unfinished ones
  (`amorph resume`'s way, from their last finished stage) and tries the failed ones again.
* A formula that cannot be parsed, or a line with a bad value, is refused before the cluster starts.
  A formula that fails in its task (a melt that blows up, a potential that does not know an element)
  is a row with status "failed" and its one-line error; the others go on, and `amorph screen` then
  exits 1, saying how many failed.
* Several potentials (`--potential A --potential B`): every formula runs under every potential, one
  task each, in `<out>/<formula>--<potential>`; one row per formula and potential, and the column
  `potentials_agree` says whether the potentials name the same polymorph first (empty while one of
  them failed or found none). A prediction resting on one potential is one opinion.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from amorph.errors import AmorphError
from amorph.settings import FLAGS, NUMBER_RANGES, Flag, RunSettings, apply_options, flat_settings

SCREEN_CSV = "screen.csv"
SCREEN_JSON = "screen.json"
SCREEN_ROW = "screen_row.json"  # in each formula's run folder, once it is finished
COLUMNS = (
    "formula", "potential", "status", "predicted", "spacegroup", "known", "share", "share_ci_low", "share_ci_high", "probability",
    "conclusive", "stacking_variants", "ground_state", "predicted_above_ground_mev", "differs", "potentials_agree", "wall_s", "resumed",
    "error", "folder",
)  # fmt: skip


@dataclass(frozen=True)
class ScreenItem:
    """One formula of a screen and the preset values its line of the file overrides (flag -> text)."""

    formula: str
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def folder_name(self) -> str:
        return folder_safe(self.formula.strip())

    @property
    def key(self) -> str:
        """What makes two lines the same formula: TiO2, TiO₂ and O2Ti are one; text that is no
        formula at all (its task will say so) is compared as written."""
        from amorph.composition import parse_formula

        try:
            return parse_formula(self.formula).reduced
        except AmorphError:
            return self.folder_name


def read_items(formulas: Sequence[str], file: Path | None) -> list[ScreenItem]:
    """Formulas from the command line, then from the file: one per line, `#` starts a comment; a
    first line `formula,<flag>,...` makes it a CSV whose other columns override preset values per
    formula (`atoms`, `md-steps`, ...: the names of `amorph predict`'s flags)."""
    items = [ScreenItem(f) for f in formulas]
    if file is not None:
        if not file.is_file():
            raise AmorphError(f"--file {file}: no such file")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise AmorphError(f"--file {file}: cannot read it ({err.__class__.__name__})") from None
        lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        if lines and lines[0].replace(" ", "").lower().startswith("formula,"):
            reader = csv.DictReader(lines)
            names = [n.strip() for n in reader.fieldnames or []]
            for name in names[1:]:
                flag_for(name)  # refuse an unknown column before anything runs
            for row in reader:
                cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                items.append(ScreenItem(cells.pop(names[0]), {k: v for k, v in cells.items() if v}))
        else:
            items += [ScreenItem(line) for line in lines]
    if not items:
        raise AmorphError("no formulas to screen: give them as arguments or in --file")
    seen: set[str] = set()
    for item in items:
        if item.key in seen:
            raise AmorphError(f"'{item.formula}' is listed twice")
        seen.add(item.key)
    return items


def check_items(items: Sequence[ScreenItem], base: RunSettings) -> None:
    """Refuse, naming it, a line whose formula cannot be parsed or whose values are out of range:
    input errors are answered before a cluster starts, not found in a task minutes later."""
    from amorph.composition import parse_formula

    for item in items:
        try:
            parse_formula(item.formula)
            item_settings(item, base)
        except AmorphError as err:
            message = str(err)
            raise AmorphError(message if message.startswith(item.formula) else f"{item.formula}: {message}") from None


def flag_for(column: str) -> Flag:
    """The `amorph predict` flag a CSV column names ("md-steps", "md_steps" or "--md-steps")."""
    option = "--" + column.strip().lstrip("-").replace("_", "-")
    numbers = [f for f in FLAGS if f.section and f.cli and f.allowed in NUMBER_RANGES]  # a CSV cell is a number
    for flag in numbers:
        if flag.option == option:
            return flag
    settable = ", ".join(f.option.lstrip("-") for f in numbers)
    raise AmorphError(f"--file: column '{column}' is not a setting a screen can vary (one of: {settable})")


def item_settings(item: ScreenItem, base: RunSettings) -> RunSettings:
    """The base settings with the formula and its line's overrides; AmorphError naming a bad value."""
    settings = RunSettings.from_dict({**base.to_dict(), "formula": item.formula})
    for column, text in item.overrides.items():
        flag = flag_for(column)
        kind = type(flag.value(settings))
        try:
            value = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except ValueError:
            raise AmorphError(f"{item.formula}: {flag.option} must be a number, got '{text}'") from None
        flag.check(value)
        settings = apply_options(settings, {flag.option: value})  # as `predict` sets it (--n-max turns fitting off)
    return settings


def run_item(settings_data: dict[str, Any], folder: str, cores: int | None = None) -> dict[str, Any]:
    """One formula, in a Dask worker: predict (resuming what an earlier screen left), then the
    ground state by energy as `amorph compare` finds it. Never raises: a failure is a row."""
    from amorph.results.rundir import CONFIG

    started = time.perf_counter()
    out = Path(folder)
    row: dict[str, Any] = {"formula": settings_data["formula"], "potential": settings_data.get("potential"), "folder": folder,
                           "resumed": False}
    try:
        settings = RunSettings.from_dict(settings_data)
        resume = (out / CONFIG).is_file()
        if resume:
            _check_same_settings(out, settings)
            finished = _finished_row(out)
            if finished is not None:
                return {**finished, "resumed": False, "skipped": True}
        from amorph.md.parallel_relax import core_budget
        from amorph.pipeline import predict

        row["resumed"] = resume
        with core_budget(cores):  # this formula's share of the machine (start_cluster)
            report = predict(settings, out, resume=resume)  # a finished run (report.json there) only reads back
        row.update(_prediction_columns(report))
        row.update(_ground_state_columns(out, settings.device, row.get("predicted")))
        row["status"] = "done"
        row.setdefault("error", "")
    except AmorphError as err:
        row.update(status="failed", error=str(err).splitlines()[0] if str(err) else "error")
    except Exception as err:  # a bug or a library failure: still one row, the screen goes on
        row.update(status="failed", error=f"{type(err).__name__}: {err}".splitlines()[0])
    row["wall_s"] = round(time.perf_counter() - started, 1)
    if row["status"] == "done":
        from amorph.results.rundir import RunDir

        RunDir(out).write_json(SCREEN_ROW, row)  # atomically: a kill leaves the old file or none
    return row


def _check_same_settings(out: Path, settings: RunSettings) -> None:
    """Refuse to take or resume a formula's folder that was run with other settings, saying how to
    go on in a screen's terms (predict's --resume/--restart are not a screen's flags)."""
    from amorph.inputs import changed_settings
    from amorph.results.rundir import CONFIG

    try:
        recorded = RunSettings.from_dict(json.loads((out / CONFIG).read_text())["settings"])
    except (OSError, KeyError, ValueError, TypeError):
        raise AmorphError(f"{out / CONFIG} cannot be read; remove {out} to run this formula again") from None
    changed = changed_settings(recorded, settings)
    if changed:
        raise AmorphError(f"{out} holds a run with other settings ({'; '.join(changed)}); screen into another --out, or remove {out}")


def _finished_row(out: Path) -> dict[str, Any] | None:
    """The row a finished formula left (screen_row.json), or None where there is none or it cannot be read."""
    try:
        row = json.loads((out / SCREEN_ROW).read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("status") == "done" else None


def _prediction_columns(report: dict[str, Any]) -> dict[str, Any]:
    pred = report["prediction"]
    if pred.get("polymorph") is None:
        return {"predicted": None, "known": False, "share": 0.0, "conclusive": False, "error": pred.get("message", "")}
    low, high = pred.get("share_ci95") or (None, None)
    return {
        "predicted": pred["polymorph"],
        "spacegroup": f"{pred['spacegroup_symbol']} ({pred['spacegroup_number']})",
        "known": pred["known"],
        "share": pred["share"],
        "share_ci_low": low,
        "share_ci_high": high,
        "probability": pred.get("probability"),
        "conclusive": pred.get("conclusive", True),
        "stacking_variants": pred.get("stacking_variants", 0),  # of its count: its layers in another stacking
    }


def _ground_state_columns(out: Path, device: str, predicted: str | None) -> dict[str, Any]:
    """The lowest-energy known polymorph under the run's own potential (`amorph compare DIR`),
    written to the run folder as compare.json; none when the run knew no polymorph."""
    from amorph.compare import compare_run
    from amorph.results.rundir import COMPARE_JSON, RunDir

    try:
        rows, used, _ = compare_run(out, device)
    except AmorphError:
        return {"ground_state": None, "differs": None}
    RunDir(out).write_json(COMPARE_JSON, {"target": str(out), "potential": used, "polymorphs": rows})
    # a polymorph whose relaxation did not converge, or gave no finite energy, cannot be the ground state
    finite = [r for r in rows if math.isfinite(r["energy_per_atom"])]
    trusted = [r for r in finite if r["converged"]] or finite
    if not trusted:
        return {"ground_state": None, "differs": None}
    ground = min(trusted, key=lambda r: r["energy_per_atom"])
    mine = next((r for r in finite if r["name"] == predicted), None)
    above = None if mine is None else mine["energy_per_atom"] - ground["energy_per_atom"]
    return {
        "ground_state": ground["name"],
        "predicted_above_ground_mev": None if above is None else round(1000 * above, 1),
        "differs": predicted is not None and predicted != ground["name"],
    }


# ---------------------------------------------------------------------------------------- the cluster


def cpu_layout(n_items: int, cores: int) -> tuple[int, int]:
    """(workers, cores each) for a CPU screen: as many formulas at once as there are cores, up to the
    number of formulas, the cores shared out among them."""
    workers = max(1, min(n_items, cores))
    return workers, max(1, cores // workers)


def gpu_worker_specs(n_gpus: int, visible: str | None = None) -> dict[str, dict[str, Any]]:
    """SpecCluster workers: one per GPU, each process seeing only its own device. `visible` is the
    CUDA_VISIBLE_DEVICES this process was given (SLURM sets it, e.g. "2,3"): worker k gets its k-th
    entry, not device k."""
    from distributed import Nanny

    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(k) for k in range(n_gpus)]
    return {
        f"gpu-{k}": {"cls": Nanny, "options": {"nthreads": 1, "env": {"CUDA_VISIBLE_DEVICES": device}}}
        for k, device in enumerate(devices[:n_gpus])
    }


def start_cluster(n_items: int, workers: int | None, device: str) -> tuple[Any, int]:
    """A cluster on this machine (see the module docstring), which the caller closes, and the cores
    each task may use (md.parallel_relax.core_budget: one per GPU worker)."""
    import logging

    import dask
    from distributed import LocalCluster, Scheduler, SpecCluster

    from amorph.md.parallel_relax import cpu_workers
    from amorph.md.potentials import resolve_device

    # a predict run relaxes its subcells in processes of its own (md.parallel_relax): a worker must
    # be allowed children
    dask.config.set({"distributed.worker.daemon": False})
    # Dask's own log lines stay out of the terminal, errors included: a worker that dies reaches the
    # screen as its formula's error (as_completed), and after Ctrl-C a worker whose scheduler has gone
    # logs a heartbeat traceback (seen on a loaded machine) that is not a fault of the screen
    quiet = {"silence_logs": logging.CRITICAL}
    if resolve_device(device) == "cuda":
        import torch

        n_gpus = torch.cuda.device_count() if workers is None else min(workers, torch.cuda.device_count())
        scheduler = {"cls": Scheduler, "options": {"dashboard_address": None}}
        return SpecCluster(workers=gpu_worker_specs(n_gpus, os.environ.get("CUDA_VISIBLE_DEVICES")), scheduler=scheduler, **quiet), 1
    count, cores = cpu_layout(n_items, cpu_workers())
    if workers is not None:
        count, cores = workers, max(1, cpu_workers() // workers)
    # OMP_NUM_THREADS is torch's and OpenMP's own setting, not amorph's: one thread per worker process
    return LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                        env={"OMP_NUM_THREADS": "1"}, **quiet), cores


@dataclass
class ScreenResult:
    rows: list[dict[str, Any]]
    seconds: float


@dataclass(frozen=True)
class ScreenTask:
    """One formula under one potential: its folder name inside the screen's and its settings."""

    item: ScreenItem
    potential: str
    folder_name: str


def screen_tasks(items: Sequence[ScreenItem], potentials: Sequence[str]) -> list[ScreenTask]:
    """Every formula under every potential; with one potential the folder is the formula's alone, as
    a screen has always written it."""
    if len(set(potentials)) < len(potentials):
        raise AmorphError("a --potential is listed twice")
    return [ScreenTask(item, p, item.folder_name if len(potentials) == 1 else f"{item.folder_name}--{folder_safe(p, keep='-_.+')}")
            for item in items for p in potentials]


def folder_safe(text: str, keep: str = "-_.") -> str:
    """`text` as a folder name: ASCII letters, digits and the characters in `keep`; anything else "_"."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in keep) else "_" for ch in text)


def mark_agreement(rows: Sequence[dict[str, Any]]) -> None:
    """Set potentials_agree on each row: True when every potential run on its formula finished and named
    the same polymorph, False when they named different ones, None with one potential, a failure or a
    run that named none."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(ScreenItem(row["formula"]).key, []).append(row)
    for group in groups.values():
        named = [r.get("predicted") for r in group if r["status"] == "done"]
        complete = len(group) > 1 and len(named) == len(group) and all(named)
        for row in group:
            row["potentials_agree"] = len(set(named)) == 1 if complete else None


def screen(
    items: Sequence[ScreenItem],
    base: RunSettings,
    out: Path,
    scheduler: str | None = None,
    workers: int | None = None,
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
    potentials: Sequence[str] = (),
) -> ScreenResult:
    """Run every formula (under every potential; default: base's) as a Dask task and write screen.csv,
    screen.json, figures/screen.png and report.html in `out`. on_row(row, finished, failed) after each
    task (the progress bar)."""
    from distributed import Client, as_completed

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    plan = screen_tasks(items, list(potentials) or [base.potential])
    rows: dict[str, dict[str, Any]] = {}
    tasks: list[tuple[ScreenTask, dict[str, Any]]] = []
    for task in plan:
        folder = str(out / task.folder_name)
        try:
            tasks.append((task, item_settings(task.item, replace(base, potential=task.potential)).to_dict()))
        except AmorphError as err:  # a bad value on its line: that formula fails, the others run
            rows[task.folder_name] = {"formula": task.item.formula, "potential": task.potential, "folder": folder, "status": "failed",
                                      "error": str(err), "wall_s": 0.0}
    failed = len(rows)
    for row in rows.values():
        if on_row:
            on_row(row, len(rows), failed)
    if tasks:
        cluster, cores = (None, None) if scheduler else start_cluster(len(tasks), workers, base.device)
        try:
            with Client(scheduler or cluster) as client:
                futures = {  # keys unique to this screen: a shared scheduler treats equal keys as one task
                    client.submit(run_item, data, str(out / task.folder_name), cores,
                                  key=f"amorph-{task.folder_name}-{uuid.uuid4().hex}"): task
                    for task, data in tasks
                }
                for future in as_completed(futures):
                    task = futures[future]
                    try:
                        row = future.result()
                    except Exception as err:  # the worker itself died (out of memory, a crash): that formula fails
                        row = {"formula": task.item.formula, "potential": task.potential, "folder": str(out / task.folder_name),
                               "status": "failed", "error": f"{type(err).__name__}: {err}".splitlines()[0], "wall_s": 0.0}
                    rows[task.folder_name] = row
                    failed += row["status"] != "done"
                    if on_row:
                        on_row(row, len(rows), failed)
        finally:
            if cluster is not None:
                cluster.close()
    ordered = [rows[task.folder_name] for task in plan]
    for row in ordered:  # a formula that failed before its run made a folder lists none
        if row.get("folder") and not Path(row["folder"]).is_dir():
            row["folder"] = ""
    mark_agreement(ordered)
    write_summary(ordered, out, replace(base, potential=", ".join(dict.fromkeys(t.potential for t in plan))))
    return ScreenResult(ordered, time.perf_counter() - started)


def write_summary(rows: Sequence[dict[str, Any]], out: Path, base: RunSettings) -> None:
    """screen.csv (one line per formula, COLUMNS), screen.json (the same with the settings) and the page."""
    import pandas as pd

    from amorph.results.html import screen_page
    from amorph.results.report import share_text
    from amorph.results.rundir import RunDir

    table = [{c: row.get(c) for c in COLUMNS} for row in rows]
    folder = RunDir(out)
    folder.write_csv(SCREEN_CSV, pd.DataFrame(table, columns=list(COLUMNS)))
    settings = {k: v for k, v in base.to_dict().items() if k != "formula"}
    folder.write_json(SCREEN_JSON, {"settings": settings, "formulas": table})
    screen_page([{**row, "share_text": share_text(row) if row.get("predicted") else ""} for row in rows], out, flat_settings(settings))


def wall_summary(result: ScreenResult) -> str:
    done = sum(r["status"] == "done" for r in result.rows)
    skipped = sum(bool(r.get("skipped")) for r in result.rows)
    several = len({r.get("potential") for r in result.rows}) > 1
    text = f"{done} of {len(result.rows)} {'runs (formula x potential)' if several else 'formulas'} done in {result.seconds:.0f} s"
    return text + (f" ({skipped} finished before, taken as they were)" if skipped else "")

