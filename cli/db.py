"""`amorph db list|show|export`: browse the known polymorphs every prediction is named against."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from amorph.errors import AmorphError
from amorph.settings import flag

DB_HELP = flag("--db").help

app = typer.Typer(help="Browse the known polymorphs (built-in data, Materials Project, your files).", no_args_is_help=True)

DbOption = Annotated[list[str] | None, typer.Option("--db", help=DB_HELP)]


def _polymorphs(formula: str, db: list[str] | None):
    """Entries of a formula from the sources; prototypes are listed unrelaxed (no potential here)."""
    from amorph.composition import parse_formula, volume_per_atom_from_radii
    from amorph.matching.prototypes import prototype_polymorphs
    from amorph.matching.sources import BUILTIN, PROTOTYPES, gather, merge

    parsed = parse_formula(formula)
    sources = tuple(db or (BUILTIN,))
    found = gather(parsed.reduced, sources)
    if PROTOTYPES in sources and not found:
        found = merge([], prototype_polymorphs(parsed.reduced, volume_per_atom_from_radii(parsed), max_atoms=24))
    return parsed.reduced, found


@app.command("list")
def list_(
    formula: Annotated[str | None, typer.Argument(help="A formula: its polymorphs. None: every built-in formula.")] = None,
    db: DbOption = None,
) -> None:
    """List the built-in formulas, or the known polymorphs of FORMULA with their sources."""
    from rich.table import Table

    from amorph.cli.consoles import stdout

    if formula is None:
        from amorph.matching.database_index import known_formulas, polymorph_names

        table = Table(title=f"Built-in polymorph database: {len(known_formulas())} formulas")
        for col in ("formula", "entries", "polymorphs (* ground state)"):
            table.add_column(col)
        for f in known_formulas():
            entries = polymorph_names(f)  # names only: building every structure took seconds
            table.add_row(f, str(len(entries)), ", ".join(name + ("*" if ground else "") for name, ground in entries))
        stdout.print(table)
        return
    reduced, polymorphs = _polymorphs(formula, db)
    if not polymorphs:
        raise AmorphError(f"no known polymorphs of {reduced} in {', '.join(db or ['builtin'])}")
    table = Table(title=f"Known polymorphs of {reduced}", expand=True)
    table.caption = "* ground state, ~ ordered approximant; full sources: amorph db show FORMULA NAME"
    labels = [p.name + ("*" if p.ground_state else "") + ("~" if p.approximant else "") for p in polymorphs]
    groups = [f"{p.spacegroup_symbol} ({p.spacegroup_number})" for p in polymorphs]
    table.add_column("name", no_wrap=True, min_width=max(map(len, labels)))
    table.add_column("space group", no_wrap=True, min_width=max(map(len, groups)))
    table.add_column("mineral", no_wrap=True, min_width=max(len("mineral"), *(len(p.mineral) for p in polymorphs)))
    table.add_column("source", no_wrap=True, overflow="ellipsis", ratio=1)
    for p, name, group in zip(polymorphs, labels, groups):
        table.add_row(name, group, p.mineral, p.source)
    stdout.print(table)


@app.command()
def show(
    formula: Annotated[str, typer.Argument(help="Formula, e.g. TiO2.")],
    name: Annotated[str, typer.Argument(help="Polymorph name as `amorph db list FORMULA` shows it.")],
    db: DbOption = None,
) -> None:
    """Space group, lattice and source of one polymorph on stderr; its CIF on stdout."""
    from pymatgen.io.cif import CifWriter

    from amorph.cli.render import stderr

    reduced, polymorphs = _polymorphs(formula, db)
    match = next((p for p in polymorphs if p.name == name.lower()), None)
    if match is None:
        known = ", ".join(p.name for p in polymorphs) or "none"
        raise AmorphError(f"{reduced} has no polymorph named '{name}' (known: {known})")
    lat = match.structure.lattice
    stderr.print(f"[bold]{reduced} {match.name}[/bold]" + (f" ({match.mineral})" if match.mineral else ""))
    stderr.print(f"space group {match.spacegroup_symbol} ({match.spacegroup_number}), {len(match.structure)} atoms per cell")
    stderr.print(
        f"a={lat.a:.4f} b={lat.b:.4f} c={lat.c:.4f} A, alpha={lat.alpha:.2f} beta={lat.beta:.2f} gamma={lat.gamma:.2f} deg, "
        f"density {match.structure.density:.3f} g/cm3"
    )
    stderr.print(f"source: {match.source}")
    if match.note:
        stderr.print(f"note: {match.note}", highlight=False)
    sys.stdout.write(str(CifWriter(match.structure, symprec=0.01)))


@app.command()
def export(
    formula: Annotated[str, typer.Argument(help="Formula, e.g. TiO2.")],
    directory: Annotated[Path, typer.Argument(help="Folder to write <name>.cif files and index.csv into.")],
    db: DbOption = None,
) -> None:
    """Write every known polymorph of FORMULA as a CIF, with index.csv of names, space groups and sources."""
    from pymatgen.io.cif import CifWriter

    from amorph.cli.render import stdout

    reduced, polymorphs = _polymorphs(formula, db)
    if not polymorphs:
        raise AmorphError(f"no known polymorphs of {reduced} in {', '.join(db or ['builtin'])}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for p in polymorphs:
            CifWriter(p.structure, symprec=0.01).write_file(directory / f"{p.name}.cif")
    except OSError as exc:
        raise AmorphError(f"cannot write to {directory}: {exc.strerror or exc}") from exc
    rows = [
        {
            "name": p.name,
            "mineral": p.mineral,
            "spacegroup_symbol": p.spacegroup_symbol,
            "spacegroup_number": p.spacegroup_number,
            "ground_state": p.ground_state,
            "approximant": p.approximant,
            "origin": p.origin,
            "source": p.source,
            "file": f"{p.name}.cif",
        }
        for p in polymorphs
    ]
    import pandas as pd

    pd.DataFrame(rows).to_csv(directory / "index.csv", index=False)
    stdout.print(f"wrote {len(polymorphs)} CIFs of {reduced} and index.csv to {directory}")
