"""Relax many subcells at once: one batched forward pass per FIRE step for every cell in flight.

Each cell keeps its own ASE FIRE optimizer on a FrechetCellFilter, exactly as the one-at-a-time path
(md.relax.relax) does, and takes the same steps in the same order: evaluate, test convergence, step.
Only the evaluation is shared: the cells in flight are evaluated together. A cell that converges or
runs out of steps leaves the batch at once and the next waiting cell takes its place (in-flight
batching), so the batch stays full until the queue is empty.

On a GPU out-of-memory error the forward pass is split in two and retried; a cell whose evaluation
fails on its own is finished with the error, never dropped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import full_3x3_to_voigt_6_stress
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE

from md.evaluators import BatchEvaluator, Evaluation
from md.relax import RelaxResult


class _PrecomputedCalculator(Calculator):
    """Hands ASE the results the batch computed for exactly this state; anything else is a bug."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def put(self, atoms: Atoms, evaluation: Evaluation) -> None:
        self.atoms = atoms.copy()
        self.results = {
            "energy": evaluation.energy,
            "free_energy": evaluation.energy,
            "forces": evaluation.forces,
            "stress": full_3x3_to_voigt_6_stress(evaluation.stress),
        }

    def calculate(self, atoms=None, properties=None, system_changes=None):  # type: ignore[override]
        raise RuntimeError("batched relaxation: a state was asked for that the batch did not evaluate")


@dataclass
class _Job:
    index: int
    atoms: Atoms
    optimizer: FIRE
    slot: _PrecomputedCalculator
    steps: int = 0
    initial_energy: float = math.nan
    energy: float = math.nan


def _is_out_of_memory(err: BaseException) -> bool:
    return "out of memory" in str(err).lower()


def _evaluate(evaluator: BatchEvaluator, cells: list[Atoms]) -> list[Evaluation | BaseException]:
    """Evaluate cells in forward passes of at most evaluator.max_atoms atoms; halve on out-of-memory;
    a pass that raises otherwise is redone cell by cell so only the culprit fails."""
    results: list[Evaluation | BaseException] = []
    start = 0
    while start < len(cells):
        chunk, atoms_in = [], 0
        for cell in cells[start:]:
            if chunk and atoms_in + len(cell) > evaluator.max_atoms:
                break
            chunk.append(cell)
            atoms_in += len(cell)
        try:
            results.extend(evaluator.evaluate(chunk))
        except Exception as err:
            if _is_out_of_memory(err) and len(chunk) > 1:
                _free_device_memory()
                evaluator.max_atoms = max(1, atoms_in // 2)
                continue  # retry this chunk, smaller
            if len(chunk) == 1:
                results.append(err)
            else:
                for cell in chunk:
                    try:
                        results.extend(evaluator.evaluate([cell]))
                    except Exception as single:
                        results.append(single)
        start += len(chunk)
    return results


def _free_device_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def relax_many(
    cells: Sequence[Atoms],
    evaluator: BatchEvaluator,
    fmax: float,
    max_steps: int,
    in_flight: int | None = None,
    on_done: Callable[[int, RelaxResult], None] | None = None,
) -> list[RelaxResult]:
    """Relax every cell (atoms and cell, FIRE + FrechetCellFilter); results in input order.

    `in_flight` caps how many cells are relaxed together (default: as many as fill one forward pass
    of evaluator.max_atoms atoms). `on_done(index, result)` is called as each cell finishes.
    """
    queue = deque(range(len(cells)))
    results: list[RelaxResult | None] = [None] * len(cells)
    active: list[_Job] = []

    def start(index: int) -> _Job:
        atoms = cells[index].copy()
        slot = _PrecomputedCalculator()
        atoms.calc = slot
        optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        optimizer.fmax = fmax
        return _Job(index, atoms, optimizer, slot)

    def finish(job: _Job, converged: bool, error: str = "") -> None:
        final = job.atoms.copy()
        final.calc = None
        result = RelaxResult(final, job.initial_energy, job.energy if not error else math.nan, job.steps, converged, error)
        results[job.index] = result
        if on_done is not None:
            on_done(job.index, result)

    while queue or active:
        atoms_in = sum(len(job.atoms) for job in active)
        while queue and (
            not active
            or (in_flight is not None and len(active) < in_flight)
            or (in_flight is None and atoms_in + len(cells[queue[0]]) <= evaluator.max_atoms)
        ):
            job = start(queue.popleft())
            active.append(job)
            atoms_in += len(job.atoms)

        evaluations = _evaluate(evaluator, [job.atoms for job in active])
        still = []
        for job, evaluation in zip(active, evaluations):
            if isinstance(evaluation, BaseException):
                finish(job, False, f"{type(evaluation).__name__}: {evaluation}")
                continue
            job.slot.put(job.atoms, evaluation)
            job.energy = evaluation.energy
            if job.steps == 0:
                job.initial_energy = evaluation.energy
            try:
                gradient = job.optimizer.optimizable.get_gradient()
                converged = bool(job.optimizer.gradient_converged(gradient))
                if converged or job.steps >= max_steps:
                    finish(job, converged)
                    continue
                job.optimizer.step()
            except Exception as err:  # a broken state (NaN forces, singular cell): keep it as a failure
                finish(job, False, f"{type(err).__name__}: {err}")
                continue
            job.steps += 1
            still.append(job)
        active = still
    return [r for r in results if r is not None]
