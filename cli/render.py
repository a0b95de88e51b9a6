"""Terminal output: progress bars, the polymorph table and the one-line prediction."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from amorph.cli.consoles import stderr as stderr  # re-exported: commands print through render
from amorph.cli.consoles import stdout as stdout
from amorph.results.report import (
    SIMILARITY_HEADER,
    amorphous_limit_text,
    not_formed_text,
    share_of,
    share_text,
    similarity_lines,
    spacegroup_text,
    stacking_note,
    structure_only_text,
    unknown_description,
)


class RichProgress:
    """ProgressSink drawn with rich on stderr (stdout stays clean for --json): one bar per stage with ETA."""

    def __init__(self, console: Console = stderr):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(compact=True),
            console=console,
        )
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, description: str, total: int) -> None:
        self.task = self.progress.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")


MAX_UNKNOWN_ROWS = 8  # the terminal shows the commonest unknowns; polymorphs.csv has them all


def polymorph_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"What {report['n_valid']} valid subcells of {report['n_subcells']} became ({report['potential']})")
    for col, justify in [
        ("product", "left"),
        ("space group", "left"),
        ("count", "right"),
        ("share [95% CI]", "right"),
        ("lowest E (eV/atom)", "right"),
        ("median E (eV/atom)", "right"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    shown_unknowns, hidden, hidden_count = 0, 0, 0
    for row in report["polymorphs"]:
        if not row["known"]:
            if shown_unknowns >= MAX_UNKNOWN_ROWS:
                hidden, hidden_count = hidden + 1, hidden_count + row["count"]
                continue
            shown_unknowns += 1
        name = escape(row["name"]) if row["known"] else f"[dim]{escape(unknown_description(row))}[/dim]"  # names from --db files
        name += escape(stacking_note(row))
        table.add_row(
            name,
            spacegroup_text(row),
            str(row["count"]),
            share_text(row),
            f"{row['lowest_energy_per_atom']:.4f}",
            f"{row['median_energy_per_atom']:.4f}",
        )
    if hidden:
        share = hidden_count / max(1, report["n_valid"])
        table.add_row(f"[dim]{hidden} more unknown products (polymorphs.csv)[/dim]", "", str(hidden_count), f"{100 * share:.1f}%", "", "")
    return table


def rules_table(report: dict[str, Any]) -> Table:
    """What each rule names, side by side (report.json `predictions`); the run's own rule is marked."""
    table = Table(title="First to nucleate, by rule (* this run's --rule; P: share of bootstrap resamples naming it, ? below 0.8)")
    for col, justify in [("rule", "left"), ("names", "left"), ("space group", "left"), ("count", "right"), ("share [95% CI]", "right"),
                         ("E (eV/atom)", "right"), ("P(named)", "right"), ("runner-up", "left")]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    chosen = report["prediction"].get("rule")
    for rule, named in report.get("predictions", {}).items():
        label = rule + (" *" if rule == chosen else "")
        if named.get("polymorph") is None:
            table.add_row(label, f"[dim]{escape(named['message'])}[/dim]", "", "", "", "", "", "")
            continue
        name = escape(named["polymorph"]) if named["known"] else f"[dim]{escape(named['polymorph'])} (no known polymorph)[/dim]"
        name += escape(stacking_note(named))
        row = share_of(named)
        probability = f"{named['probability']:.2f}" + ("" if named["conclusive"] else " ?") if "probability" in named else ""
        runner = escape(named.get("runner_up", {}).get("polymorph", ""))
        table.add_row(label, name, f"{named['spacegroup_symbol']} ({named['spacegroup_number']})", str(named["count"]), share_text(row),
                      f"{named['energy_per_atom']:.4f}", probability, runner)
    table.caption = escape(not_formed_text(report)) or None
    return table


def similarity_table(report: dict[str, Any]) -> Table | None:
    """Every known polymorph against the amorphous solid, closest first, with what the subcells said beside."""
    lines = similarity_lines(report)
    if not lines:
        return None
    table = Table(title="How close the amorphous solid is to each known polymorph (1: the same; mean ± standard error over replicas)")
    for col in SIMILARITY_HEADER:
        table.add_column(col, justify="left" if col == "polymorph" else "right")
    for line in lines:
        table.add_row(escape(line[0]), *line[1:])
    table.caption = "* ambient ground state"
    return table


def similarity_notes(report: dict[str, Any]) -> list[str]:
    """The lines under the similarity table: the amorphous limit, and any answer on structure alone."""
    return [text for text in (amorphous_limit_text(report), structure_only_text(report)) if text]


def compare_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    with_shares = "share" in rows[0]
    for col in ["polymorph", "space group", "E (eV/atom)", "E - lowest (meV/atom)"] + (["count", "share"] if with_shares else []):
        table.add_column(col, justify="left" if col in ("polymorph", "space group") else "right")
    for r in rows:
        cells = [
            r["name"] + (" *" if r["ground_state"] else ""),
            f"{r['spacegroup_symbol']} ({r['spacegroup_number']})",
            f"{r['energy_per_atom']:.4f}",
            f"{1000 * r['energy_above_lowest']:.1f}",
        ]
        if with_shares:
            cells += [str(r["count"]), f"{100 * r['share']:.1f}%"]
        table.add_row(*cells)
    table.caption = "* ambient ground state (experiment)"
    return table


def compare_across_table(by_potential: dict[str, list[dict[str, Any]]]) -> Table:
    """The known polymorphs in one row each, and under each potential its energy above that potential's
    lowest (meV/atom) with its rank: energies are compared within a potential, never across."""
    table = Table(title="Known polymorphs: energy above the lowest under each potential (meV/atom, rank)")
    table.add_column("polymorph")
    table.add_column("space group")
    for spec in by_potential:
        table.add_column(spec, justify="right", overflow="fold")
    first = next(iter(by_potential.values()))
    found = {spec: {r["name"]: (k + 1, r) for k, r in enumerate(rows)} for spec, rows in by_potential.items()}
    for r in first:
        cells = []
        for spec in by_potential:
            rank, mine = found[spec].get(r["name"], (None, None))
            cells.append("-" if mine is None else f"{1000 * mine['energy_above_lowest']:.1f} (#{rank})" + ("" if mine["converged"] else " ~"))
        table.add_row(r["name"] + (" *" if r["ground_state"] else ""), f"{r['spacegroup_symbol']} ({r['spacegroup_number']})", *cells)
    table.caption = "* ambient ground state (experiment); ~ relaxation not converged; rows in the first potential's order"
    return table


def screen_table(rows: list[dict[str, Any]]) -> Table:
    """One line per formula (and potential, when a screen ran several): the prediction beside the
    ground state by energy, and whether the potentials agree."""
    several = len({r.get("potential") for r in rows}) > 1
    table = Table(title="Screen: first to nucleate against the ground state (by energy under the potential)")
    columns = [("formula", "left")] + ([("potential", "left")] if several else []) + [
        ("first to nucleate", "left"), ("share [95% CI]", "right"), ("P", "right"), ("ground state", "left"), ("differs", "left")]
    columns += ([("potentials agree", "left")] if several else []) + [("wall (s)", "right"), ("status", "left")]
    for col, justify in columns:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        formula = escape(r["formula"])  # the user's text, and errors quoting it, are not rich markup
        first = [formula] + ([escape(str(r.get("potential") or ""))] if several else [])
        if r["status"] != "done":
            table.add_row(*first, f"[red]{escape(r.get('error', ''))}[/red]", "", "", "", "", *([""] if several else []),
                          f"{r.get('wall_s') or 0:.0f}", "[red]failed[/red]")
            continue
        named = escape(r["predicted"]) if r.get("predicted") else "[dim]none[/dim]"
        if r.get("stacking_variants"):
            named += f" ({r['stacking_variants']} in another stacking)"
        if r.get("predicted") and r.get("conclusive") is False:
            named += " ?"
        differs = {True: "yes", False: "no"}.get(r.get("differs"), "")  # type: ignore[arg-type]
        agree = {True: "yes", False: "[bold]no[/bold]"}.get(r.get("potentials_agree"), "")  # type: ignore[arg-type]
        status = "done (earlier)" if r.get("skipped") else ("done (resumed)" if r.get("resumed") else "done")
        shown = share_text(r) if r.get("predicted") else ""
        probability = f"{r['probability']:.2f}" if isinstance(r.get("probability"), float) else ""
        table.add_row(*first, named, shown, probability, escape(r.get("ground_state") or ""), differs, *([agree] if several else []),
                      f"{r.get('wall_s') or 0:.0f}", status)
    return table
