"""Stage 3: the subcells. Each replica's amorphous cell is cut into orthorhombic subcells on a
fractional grid (motifs.subcells), filtered by size and composition, sampled within the budget
(shared evenly between replicas) and a reserve for an inconclusive answer, and written with where
each came from.
"""

from __future__ import annotations

from dataclasses import asdict
from itertools import zip_longest
from typing import TYPE_CHECKING

from ase import Atoms

from amorph.errors import AmorphError
from amorph.motifs.subcells import Subcell, extract_subcells
from amorph.progress import ProgressSink
from amorph.reach import polymorph_primitive_sizes
from amorph.results import rundir as files
from amorph.run import STREAM_SUBCELLS, replica_rngs

if TYPE_CHECKING:
    from amorph.run import Run


def cut_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 3: orthorhombic subcells on the fractional grid, filtered and sampled (pooled over replicas)."""
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    sc = run.settings.subcells
    progress.start("Cutting subcells", len(replicas))
    sizes = None if sc.all_sizes else polymorph_primitive_sizes(run.references())
    n_max = run.n_max()
    budget = -(-sc.max_subcells // len(replicas))  # the budget is shared evenly between replicas
    reserve = 0 if sc.adaptive else -(-sc.more_if_inconclusive // len(replicas))  # so is the reserve
    frames: list[Atoms] = []
    spares: list[list[tuple[int, Subcell]]] = []  # per replica; after every replica's budget, so the budget's ids stay the same
    censuses = []
    rngs = replica_rngs(run.settings.seed, STREAM_SUBCELLS, len(replicas))
    for k, amorphous in enumerate(replicas):
        subcells, census = extract_subcells(
            amorphous,
            run.formula,
            d_frac=sc.d_frac,
            n_min=sc.n_min,
            n_max=n_max,
            max_subcells=budget,
            rng=rngs[k],
            sizes=sizes,
            any_composition=sc.any_composition,
            push_cut_contacts=sc.push_cut_contacts,
            reserve=reserve,
        )
        censuses.append(census)
        frames += [subcell_frame(sub, len(frames) + n, k) for n, sub in enumerate(s for s in subcells if not s.reserve)]
        spares.append([(k, sub) for sub in subcells if sub.reserve])
        progress.advance()
    selected = len(frames)
    # the reserve taken in turns from each replica, so every round of it draws on all of them
    spare = [pair for turn in zip_longest(*spares) for pair in turn if pair is not None]
    frames += [subcell_frame(sub, selected + n, k) for n, (k, sub) in enumerate(spare)]
    progress.finish()
    total = {key: sum(getattr(c, key) for c in censuses) for key in asdict(censuses[0])}
    progress.note(
        f"subcells: {total['boxes']} boxes, {total['allowed']} of allowed size and composition, "
        f"{total['distinct']} distinct, {selected} selected"
        + (f" and {len(spare)} in reserve, for an inconclusive answer" if spare else "")
        + (f" (sizes divisible by {', '.join(map(str, sizes))})" if sizes else "")
        + (f" from {len(replicas)} replicas" if len(replicas) > 1 else "")
    )
    pushes = [float(a.info["cut_push"]) for a in frames[:selected]]  # the budget's subcells (the reserve's come after)
    pushed = {"subcells": sum(p > 0 for p in pushes), "largest_move": max(pushes, default=0.0)} if sc.push_cut_contacts else None
    if pushed is not None:
        progress.note(
            f"contacts made by the cut pushed apart in {pushed['subcells']} of {selected} subcells "
            f"(farthest move {pushed['largest_move']:.2f} A)"
        )
    if not frames:
        raise AmorphError(
            f"no subcell of {sc.n_min}-{n_max} atoms with the composition of {run.formula.display}; "
            "widen --n-min/--n-max or --d-frac"
        )
    run.out.write_atoms(files.SUBCELLS_INITIAL, frames, "extxyz")
    census_info = total | {
        "n_min": sc.n_min,
        "n_max": n_max,
        "allowed_sizes": sizes,
        "cut_contacts_pushed": pushed,
        "per_replica": [asdict(c) for c in censuses],
    }
    run.out.write_json(files.SUBCELL_CENSUS, census_info)


def subcell_frame(sub: Subcell, subcell_id: int, replica: int) -> Atoms:
    """A cut subcell as subcells_initial.extxyz stores it: the cell, where it came from, whether in reserve."""
    atoms = sub.atoms.copy()
    atoms.info.update(
        subcell_id=subcell_id,
        replica=replica,
        lower=" ".join(f"{v:.4f}" for v in sub.lower),
        upper=" ".join(f"{v:.4f}" for v in sub.upper),
        source_indices=" ".join(map(str, sub.indices)),
        cut_push=sub.pushed,
        reserve=sub.reserve,
    )
    return atoms
