"""Relax many subcells at once: one batched forward pass per FIRE step for every cell in flight.

The optimizer is ASE's FIRE on a FrechetCellFilter (atoms and cell), run for all cells in flight as a
few tensor operations (md.fire), so it takes the same steps as the one-at-a-time path (md.relax.relax)
in the same order: evaluate, test convergence, step. A cell that converges or runs out of steps
leaves the batch at once and the next waiting cell takes its place (in-flight batching), so the
batch stays full until the queue is empty.

On an out-of-memory error the forward pass is split in two and retried; a cell whose evaluation
fails on its own, or whose energy or forces are not finite, is finished with the error, never dropped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np
import torch
from ase import Atoms

from amorph.md.evaluators import BatchEvaluator, BatchResult, CellBatch, new_keys
from amorph.md.fire import FireState
from amorph.md.relax import RelaxResult


def _is_out_of_memory(err: BaseException) -> bool:
    return "out of memory" in str(err).lower()


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _failed(batch: CellBatch) -> BatchResult:
    nan = math.nan
    n, b = batch.positions.shape[0], batch.cells.shape[0]
    like = batch.positions
    return BatchResult(like.new_full((b,), nan), like.new_full((n, 3), nan), like.new_full((b, 3, 3), nan))


def evaluate_in_passes(evaluator: BatchEvaluator, batch: CellBatch) -> tuple[BatchResult, dict[int, str]]:
    """Evaluate a packed batch in forward passes of at most evaluator.max_atoms atoms; halve on
    out-of-memory; a pass that raises otherwise is redone cell by cell so only the culprit fails.
    Returns the results (NaN for failed cells) and {cell: error} for the failures."""
    counts = batch.counts.tolist()
    parts: list[BatchResult] = []
    errors: dict[int, str] = {}
    first = 0
    while first < len(counts):
        stop, atoms_in = first, 0
        while stop < len(counts) and (stop == first or atoms_in + counts[stop] <= evaluator.max_atoms):
            atoms_in += counts[stop]
            stop += 1
        chunk = batch if (first, stop) == (0, len(counts)) else batch.select(first, stop)
        try:
            parts.append(evaluator.evaluate_batch(chunk))
        except Exception as err:
            if _is_out_of_memory(err) and stop - first > 1:
                _free_device_memory()
                evaluator.out_of_memory(atoms_in)
                continue  # retry this run of cells, smaller
            if stop - first == 1:  # this cell alone fails
                errors[first] = f"{type(err).__name__}: {err}"
                parts.append(_failed(chunk))
            else:  # find the culprit: each cell on its own
                for b in range(first, stop):
                    single = batch.select(b, b + 1)
                    try:
                        parts.append(evaluator.evaluate_batch(single))
                    except Exception as own:
                        errors[b] = f"{type(own).__name__}: {own}"
                        parts.append(_failed(single))
        first = stop
    if len(parts) == 1:
        return parts[0], errors
    return (
        BatchResult(
            torch.cat([p.energies for p in parts]), torch.cat([p.forces for p in parts]), torch.cat([p.stresses for p in parts])
        ),
        errors,
    )


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
    device = torch.device(evaluator.device)
    queue = deque(range(len(cells)))
    results: list[RelaxResult | None] = [None] * len(cells)
    state: FireState | None = None
    index: list[int] = []  # input index of each cell in flight
    keys: list[int] = []
    initial: list[float] = []

    def admit() -> None:
        nonlocal state
        atoms_in = 0 if state is None else int(state.u.shape[0])
        chosen: list[int] = []
        while queue and (
            (not index and not chosen)
            or (in_flight is not None and len(index) + len(chosen) < in_flight)
            or (in_flight is None and atoms_in + len(cells[queue[0]]) <= evaluator.max_atoms)
        ):
            chosen.append(queue.popleft())
            atoms_in += len(cells[chosen[-1]])
        if not chosen:
            return
        packed = CellBatch.from_atoms([cells[i] for i in chosen], device)
        fresh = FireState.start(packed.numbers, packed.positions, packed.cells, packed.counts)
        state = fresh if state is None else state.extend(fresh)
        index.extend(chosen)
        keys.extend(new_keys(len(chosen)))
        initial.extend([math.nan] * len(chosen))

    def finish(b: int, positions: np.ndarray, cell: np.ndarray, steps: int, energy: float, converged: bool, error: str) -> None:
        final = cells[index[b]].copy()
        final.calc = None
        final.set_cell(cell, scale_atoms=False)
        final.positions = positions
        result = RelaxResult(final, initial[b], energy if not error else math.nan, steps, converged, error)
        results[index[b]] = result
        if on_done is not None:
            on_done(index[b], result)

    while queue or index:
        admit()
        assert state is not None
        positions, lattices = state.structures()
        batch = CellBatch(state.numbers, positions, lattices, state.counts, keys)
        evaluation, errors = evaluate_in_passes(evaluator, batch)
        atom_rows, cell_rows = state.generalised_forces(evaluation.forces, evaluation.stresses, lattices)
        worst = state.max_force(atom_rows, cell_rows)
        finite = torch.isfinite(evaluation.energies) & torch.isfinite(worst)
        converged = worst < fmax
        done = converged | (state.steps >= max_steps) | ~finite
        energies = evaluation.energies.tolist()
        steps = state.steps.tolist()
        for b, e in enumerate(energies):
            if steps[b] == 0:
                initial[b] = e
        done_host = done.tolist()
        if any(done_host):
            converged_host, finite_host = converged.tolist(), finite.tolist()
            positions_host, lattices_host = positions.cpu().numpy(), lattices.cpu().numpy()
            starts = np.concatenate([[0], np.cumsum(batch.counts.tolist())])
            for b in (b for b, d in enumerate(done_host) if d):
                error = errors.get(b, "" if finite_host[b] else "non-finite energy, forces or stress")
                finish(b, positions_host[starts[b] : starts[b + 1]], lattices_host[b], steps[b], energies[b],
                       converged_host[b] and not error, error)
            evaluator.forget([k for k, d in zip(keys, done_host) if d])
        keep = ~done
        state.step(atom_rows, cell_rows, keep)
        state = state.select(keep)
        index[:] = [i for i, d in zip(index, done_host) if not d]
        keys[:] = [k for k, d in zip(keys, done_host) if not d]
        initial[:] = [e for e, d in zip(initial, done_host) if not d]
        if not index:
            state = None
    return [r for r in results if r is not None]
