"""Where known polymorphs come from (`--db`, repeatable) and how the sources are merged.

* `builtin`: the data shipped with amorph (matching/data/polymorphs).
* `mp`: the Materials Project (matching.materials_project).
* a folder of structure files or an ASE database (matching.user_files).
* `prototypes`: AFLOW structure types of the formula's stoichiometry, relaxed with the run's
  potential; only used when no other source knows the formula (the pipeline relaxes them).

Sources are merged in the order given: an entry that the product matcher finds identical to one
taken from an earlier source, with the same space group, is dropped, and the kept entry's note records the duplicate (e.g. its mp id). Exactly
one entry stays marked as the ground state: the first source that has one decides.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from amorph.errors import AmorphError
from amorph.matching.user_files import check_source

if TYPE_CHECKING:
    from amorph.matching.polymorph import Polymorph

# The default sources are amorph.settings.DEFAULT_DATABASES. The readers of each source (pymatgen, the
# Materials Project client) are imported where they are used, so that check_sources answers a mistyped
# --db before any of them is loaded.
BUILTIN, MP, PROTOTYPES = "builtin", "mp", "prototypes"


def check_sources(specs: tuple[str, ...]) -> None:
    """Refuse unknown names and missing paths before anything runs."""
    if not specs:
        raise AmorphError("--db needs at least one source")
    for spec in specs:
        if spec not in (BUILTIN, MP, PROTOTYPES):
            check_source(Path(spec))


def gather(formula: str, specs: tuple[str, ...]) -> list[Polymorph]:
    """Known polymorphs of a reduced formula from every source but prototypes, merged in order."""
    from amorph.matching.database import known_polymorphs
    from amorph.matching.materials_project import mp_polymorphs
    from amorph.matching.user_files import user_polymorphs

    check_sources(specs)
    merged: list[Polymorph] = []
    for spec in specs:
        if spec == BUILTIN:
            found = known_polymorphs(formula)
        elif spec == MP:
            found = mp_polymorphs(formula)
        elif spec == PROTOTYPES:
            continue  # needs a potential: see amorph.references
        else:
            found = user_polymorphs(Path(spec), formula)
        merged = merge(merged, found)
    return merged


def merge(kept: list[Polymorph], incoming: list[Polymorph]) -> list[Polymorph]:
    """Append the incoming entries that match no entry kept from earlier sources (same structure under the
    product matcher and the same space group); note duplicates on the entry kept. Entries of one source
    are never merged with each other: a source may hold close pairs on purpose (see `close_to`)."""
    from amorph.matching.matcher import make_matcher

    matcher = make_matcher()
    earlier = len(kept)
    kept = list(kept)
    has_ground_state = any(p.ground_state for p in kept)
    names = {p.name for p in kept}
    for new in incoming:
        twin = next(
            (
                k
                for k, old in enumerate(kept[:earlier])
                if old.spacegroup_number == new.spacegroup_number
                and old.structure.composition.reduced_formula == new.structure.composition.reduced_formula
                and matcher.fit(old.structure, new.structure)
            ),
            None,
        )
        if twin is not None:
            old = kept[twin]
            also = f"same structure as {new.name} ({new.source})"
            kept[twin] = replace(old, note=f"{old.note} {also}".strip())
            continue
        name = new.name
        if name in names:
            name = f"{name}-{new.origin if new.origin in (MP, PROTOTYPES) else 'user'}"
        names.add(name)
        kept.append(replace(new, name=name, ground_state=new.ground_state and not has_ground_state))
        has_ground_state = has_ground_state or kept[-1].ground_state
    return kept
