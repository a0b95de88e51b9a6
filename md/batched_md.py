"""The melt-quench's forces from a batch evaluator: one call per MD step for every replica in the batch.

The replicas themselves are one state stepped by one integrator (md.integrator, md.dynamics); this
module connects them to an evaluator (md.evaluators) and decides which replicas share a batch.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from amorph.md.dynamics import ForceCall
from amorph.md.evaluators import BatchEvaluator


def evaluator_forces(evaluator: BatchEvaluator, keys: list[int]) -> ForceCall:
    """The force call of a batch whose replica k is the evaluator's cell keys[k] (so that a neighbour
    list can be reused from one step to the next)."""

    def call(rows: list[int], cells: list[Atoms]) -> list[tuple[float, np.ndarray]]:
        return [(e.energy, e.forces) for e in evaluator.evaluate(cells, keys=[keys[k] for k in rows])]

    return call


class EvaluatorCalculator(Calculator):
    """An ASE calculator that evaluates one cell through a batch evaluator, under a fixed key: the
    packed cell's relaxation (ASE FIRE) before the MD, through the same model and neighbour lists."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def __init__(self, evaluator: BatchEvaluator, key: int):
        super().__init__()
        self.evaluator = evaluator
        self.key = key

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms is None:  # Calculator.calculate has just set it
            raise RuntimeError("ASE called calculate without atoms")
        result = self.evaluator.evaluate([self.atoms.copy()], keys=[self.key])[0]
        self.results = {
            "energy": result.energy,
            "free_energy": result.energy,
            "forces": result.forces,
            "stress": full_3x3_to_voigt_6_stress(result.stress),
        }


def replica_groups(replicas: int, device: str) -> list[list[int]]:
    """Which replicas are stepped together, one batched force call per step: all of them on a GPU; one
    at a time on a CPU, where a batch of them measured 0.81-1.02x of running them one after another
    (benchmarks/md_replicas.py, CHGNet on 2 cores; docs/performance.md, M3)."""
    if replicas > 1 and device == "cuda":
        return [list(range(replicas))]
    return [[k] for k in range(replicas)]
