"""One run of the method: its settings, formula, potential and folder, as every stage receives it.

The stages (amorph.stages) take a Run and a progress sink; what one stage hands the next goes through
the run folder, so a stopped run can be resumed at any stage. Two things a Run carries besides: the
known polymorphs gathered before any file was written (`gathered`, for stage 0), and stage 4's named
products (`named`), which stage 5 reuses within the same process instead of naming them again; both
are shortcuts, never the only copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from amorph import __version__
from amorph.composition import Formula
from amorph.matching.polymorph import Polymorph
from amorph.results import provenance
from amorph.results import rundir as files
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings

if TYPE_CHECKING:
    from amorph.md.potentials import LoadedPotential
    from amorph.sampling import NamedProducts

# Independent random streams per stage, so resuming a stage reproduces it exactly.
STREAM_PACKING, STREAM_MD, STREAM_SUBCELLS, STREAM_BOOTSTRAP, STREAM_RULES, STREAM_SIMILARITY = 1, 2, 3, 4, 5, 6


def replica_rngs(seed: int, stream: int, replicas: int) -> list[np.random.Generator]:
    """Independent random streams per replica; replica 0 keeps the single-run stream."""
    return [np.random.default_rng([seed, stream] if k == 0 else [seed, stream, k]) for k in range(replicas)]


@dataclass
class Run:
    """A validated run, ready to execute: nothing has been written yet."""

    settings: RunSettings
    formula: Formula
    potential: LoadedPotential
    out: RunDir
    resume: bool = False
    gathered: list[Polymorph] | None = None  # from the --db sources, before prototypes
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (stages.json keeps them)
    notes: list[str] = field(default_factory=list)  # what prepare() found, shown when the run starts
    named: NamedProducts | None = None  # stage 4's named products, for stage 5 of the same process
    _references: list[Polymorph] | None = None

    def references(self) -> list[Polymorph]:
        """The known polymorphs of this run, as saved by stage 0."""
        if self._references is None:
            data = self.out.read_json(files.KNOWN_POLYMORPHS)
            self._references = [Polymorph.from_dict(d) for d in data["polymorphs"]]
        return self._references

    def n_max(self) -> int:
        """The most atoms in a subcell, as stage 0 set it from the known polymorphs (motifs.subcells.size_limit)."""
        # known_polymorphs.json held it before subcell_range.json existed
        where = files.SUBCELL_RANGE if self.out.has(files.SUBCELL_RANGE) else files.KNOWN_POLYMORPHS
        limit = self.out.read_json(where).get("subcell_size_limit")
        return int(limit["n_max"]) if limit else self.settings.subcells.n_max

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.settings.seed, stream])


def write_config(run: Run) -> None:
    """config.json: every setting, the seed, library versions and the potential actually used."""
    p = run.potential
    run.out.write_json(
        files.CONFIG,
        {
            "amorph_version": __version__,
            "command": provenance.command_line(),
            "started": provenance.utc_now(),
            "formula": run.formula.reduced,
            "settings": run.settings.to_dict(),
            "seed": run.settings.seed,
            "potential": {
                "requested": run.settings.potential,
                "used": p.name,
                "description": p.description,
                "version": p.version,
                "training_data": p.training,
                "weights_checksum": p.checksum,
                "device": p.device,
                "notes": p.notes,
            },
            "versions": provenance.library_versions(),
            "machine": provenance.machine(),
        },
    )
