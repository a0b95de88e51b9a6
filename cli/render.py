"""Terminal output: progress bars, the polymorph table and the one-line prediction."""

from __future__ import annotations

from typing import Any

from rich.console import Console
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

from amorph.settings import DEFAULT_RULE

stderr = Console(stderr=True)
stdout = Console()


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


def prediction_line(report: dict[str, Any]) -> str:
    """One sentence a scientist can paste into a notebook."""
    pred = report["prediction"]
    if pred.get("polymorph") is None:
        return f"{report['formula']}: {pred['message']} ({report['n_valid']} valid of {report['n_subcells']} subcells)"
    rule = pred.get("rule", "most-frequent")
    how = "" if rule == DEFAULT_RULE else f" ({rule} rule)"
    if pred.get("conclusive") is False:
        return f"{report['formula']}{how}: {pred['message']} ({pred['polymorph']} leads, named on {100 * pred['probability']:.0f}% of resamples)"
    unknown = "" if pred.get("known", True) else ", a structure no known polymorph matches"
    sure = f", named on {100 * pred['probability']:.0f}% of resamples" if "probability" in pred else ""
    return (
        f"{report['formula']}: first to nucleate{how}: {pred['polymorph']}{unknown} ({pred['spacegroup_symbol']}, "
        f"#{pred['spacegroup_number']}), {pred['count']} of {report['n_valid']} valid subcells "
        f"({100 * pred['share']:.0f}%"
        + (f", 95% CI {100 * pred['share_ci95'][0]:.0f}-{100 * pred['share_ci95'][1]:.0f}%" if pred.get("share_ci95") else "")
        + sure
        + ")"
    )


def unknown_description(row: dict[str, Any]) -> str:
    """'unknown-1 (TiO2, AB2_oP12_60; nearest brookite)': never just 'unknown'."""
    parts = [row["formula"]]
    if row.get("structure_type"):
        parts.append(row["structure_type"])
    text = f"{row['name']} ({', '.join(parts)}"
    if row.get("closest_known"):
        text += f"; nearest {row['closest_known']}, d={row['fingerprint_distance']:.2f}"
    return text + ")"


def _share(row: dict[str, Any]) -> str:
    low, high = row.get("share_ci_low"), row.get("share_ci_high")
    text = f"{100 * row['share']:.1f}%"
    return text if low is None or high is None else f"{text} [{100 * low:.0f}-{100 * high:.0f}]"


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
        name = row["name"] if row["known"] else f"[dim]{unknown_description(row)}[/dim]"
        table.add_row(
            name,
            f"{row['spacegroup_symbol']} ({row['spacegroup_number']})",
            str(row["count"]),
            _share(row),
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
            table.add_row(label, f"[dim]{named['message']}[/dim]", "", "", "", "", "", "")
            continue
        name = named["polymorph"] if named["known"] else f"[dim]{named['polymorph']} (no known polymorph)[/dim]"
        row = {"share": named["share"], "share_ci_low": named["share_ci95"][0], "share_ci_high": named["share_ci95"][1]}
        probability = f"{named['probability']:.2f}" + ("" if named["conclusive"] else " ?") if "probability" in named else ""
        runner = named.get("runner_up", {}).get("polymorph", "")
        table.add_row(label, name, f"{named['spacegroup_symbol']} ({named['spacegroup_number']})", str(named["count"]), _share(row),
                      f"{named['energy_per_atom']:.4f}", probability, runner)
    return table


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
