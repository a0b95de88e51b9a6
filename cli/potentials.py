"""`amorph potentials`: every potential amorph knows, and whether it runs here, offline."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from amorph.settings import flag

HELP_POTENTIAL = flag("--potential").help


def potentials(
    as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print the table as JSON.")] = False,
) -> None:
    """List the potentials amorph knows: installed, offline here, elements, training data, batched, checksum.

    Each one whose weights are here is loaded on the CPU to read its elements and checksum (seconds each).
    Any other ASE calculator runs with --potential ase:MODULE:FACTORY, one structure at a time.
    """
    from rich.table import Table

    from amorph.cli.render import stderr, stdout
    from amorph.md.catalog import survey

    with stderr.status("loading each potential whose weights are here ..."):
        rows = survey()
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
        return
    table = Table(title="Potentials (--potential)", caption="any ASE calculator: --potential ase:MODULE:FACTORY (one cell at a time)")
    for column in ("potential", "installed", "offline here", "elements", "training data", "batched", "weights checksum"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.potential, "yes" if r.installed else "no",
            "yes" if r.offline else f"no: {r.note}" if r.note else "no",
            str(r.elements) if r.elements is not None else "-", r.training, "yes" if r.batched else "no (ASE)",
            r.checksum[:19] + "..." if len(r.checksum) > 22 else r.checksum or "-",
        )
    stdout.print(table)
