"""Stage 5: the products. Every valid relaxed subcell gets its space group and its match among the
known polymorphs (matching.identify); subcells.csv holds one row per subcell, and products/ one CIF
per distinct product, its lowest-energy member symmetrized to its own space group
(results.product_cif), so that an expert can open what each name stands for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from ase import Atoms

from amorph.matching.identify import Identity, identify
from amorph.matching.polymorph import Polymorph
from amorph.matching.symmetry import Symmetry
from amorph.progress import ProgressSink
from amorph.results import rundir as files
from amorph.results.product_cif import product_cif
from amorph.results.subcells import COLUMNS as SUBCELL_COLUMNS
from amorph.results.subcells import SubcellRecord
from amorph.sampling import NamedProducts, product_of
from amorph.settings import MatchingSettings

if TYPE_CHECKING:
    from amorph.run import Run


def name_products(
    relaxed: list[Atoms], references: list[Polymorph], progress: ProgressSink | None = None, named: NamedProducts | None = None,
    tolerances: MatchingSettings | None = None,
) -> tuple[dict[int, Identity], dict[int, Symmetry]]:
    """Space group and name of every valid relaxed subcell, keyed by subcell id; taken from `named`
    (stage 4's) when it holds exactly these products."""
    tolerances = tolerances or MatchingSettings()
    if named is not None and named.tolerances == tolerances and set(named.products) == {a.info["subcell_id"] for a in relaxed if a.info["valid"]}:
        if progress is not None:
            progress.advance(len(relaxed))
        return named.identities(), {i: p.symmetry for i, p in named.products.items()}
    products, symmetries = [], {}
    for atoms in relaxed:
        if atoms.info["valid"]:
            product = product_of(atoms, tolerances.symprec)
            symmetries[product.subcell_id] = product.symmetry
            products.append(product)
        if progress is not None:
            progress.advance()
    return identify(products, references, tolerances), symmetries


def identify_products(run: Run, progress: ProgressSink) -> None:
    """Step 5: space group of every valid product and its match among the known polymorphs."""
    relaxed = run.out.read_atoms(files.SUBCELLS_RELAXED)
    progress.start("Identifying products", len(relaxed) + 1)
    labels, symmetries = name_products(relaxed, run.references(), progress, run.named, run.settings.matching)
    progress.advance()
    progress.finish()

    records = [
        SubcellRecord.from_relaxed(atoms, symmetries.get(atoms.info["subcell_id"]), labels.get(atoms.info["subcell_id"]))
        for atoms in relaxed
    ]
    run.out.write_csv(files.SUBCELLS_CSV, pd.DataFrame([r.to_row() for r in records], columns=list(SUBCELL_COLUMNS)))
    # one CIF per distinct product: its lowest-energy member (a layered polymorph's stacking variants
    # apart), symmetrized to its own space group (results.product_cif)
    best: dict[str, tuple[float, Atoms, Identity]] = {}
    for atoms in relaxed:
        label = labels.get(atoms.info["subcell_id"])
        if label is None:
            continue
        name = label.label + (files.STACKING_VARIANT_SUFFIX if label.stacking_variant else "")
        e = atoms.info["final_energy"] / len(atoms)
        if name not in best or e < best[name][0]:
            best[name] = (e, atoms, label)
    for name, (_, atoms, label) in best.items():
        matched = (f"the known polymorph {label.label} ({label.spacegroup_symbol}, {label.spacegroup_number})"
                   + (" in another stacking of its layers" if label.stacking_variant else "") if label.known
                   else f"no known polymorph (structure type {label.structure_type or '?'}; closest known: {label.closest_known or '?'})")
        run.out.write_text(f"{files.PRODUCTS}/{name}.cif", product_cif(atoms, name, symmetries.get(atoms.info["subcell_id"]), matched))
