"""Relax many subcells at once: one batched forward pass per FIRE step for every cell in flight.

The optimizer is ASE's FIRE on a FrechetCellFilter (atoms and cell), run for all cells in flight as a
few tensor operations (md.fire), so it takes the same steps as the one-at-a-time path (md.relax.relax)
in the same order: evaluate, test convergence, step. A cell that converges or runs out of steps
leaves the batch at once and the next waiting cell takes its place (in-flight batching, md.inflight),
so the batch stays full until the queue is empty.

On an out-of-memory error the forward pass is split in two and retried; a cell whose evaluation
fails on its own, or whose energy or forces are not finite, is finished with the error, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from ase import Atoms

from amorph.md.evaluators import BatchEvaluator, new_keys
from amorph.md.fire import FireState
from amorph.md.inflight import InFlightQueue
from amorph.md.relax import VOLUME_LIMIT, RelaxResult
from amorph.md.state import BatchResult, CellBatch, cell_starts


def _is_out_of_memory(err: BaseException) -> bool:
    return "out of memory" in str(err).lower()


def _free_device_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
        chunk = batch if (first, stop) == (0, len(counts)) else batch.slice(first, stop)
        try:
            parts.append(evaluator.evaluate_batch(chunk))
        except Exception as err:
            if _is_out_of_memory(err) and stop - first > 1:
                _free_device_memory()
                evaluator.out_of_memory(atoms_in)
                continue  # retry this run of cells, smaller
            if stop - first == 1:  # this cell alone fails
                errors[first] = f"{type(err).__name__}: {err}"
                parts.append(BatchResult.failed(chunk))
            else:  # find the culprit: each cell on its own
                for b in range(first, stop):
                    single = batch.slice(b, b + 1)
                    try:
                        parts.append(evaluator.evaluate_batch(single))
                    except Exception as own:
                        errors[b] = f"{type(own).__name__}: {own}"
                        parts.append(BatchResult.failed(single))
        first = stop
    return BatchResult.concat(parts), errors


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
    queue: InFlightQueue[RelaxResult] = InFlightQueue([len(c) for c in cells], in_flight, on_done)
    state: FireState | None = None
    while not queue.finished:
        chosen = queue.admit(0 if state is None else state.n_atoms, 0 if state is None else state.n_cells, evaluator.max_atoms)
        if chosen:
            fresh = FireState.start(CellBatch.from_atoms([cells[i] for i in chosen], device, new_keys(len(chosen))), chosen)
            state = fresh if state is None else state.extend(fresh)
        if state is None:  # the queue admits at least one cell while any is unfinished
            raise RuntimeError("relaxation queue admitted no cell although cells remain")
        batch = state.current()
        evaluation, errors = evaluate_in_passes(evaluator, batch)
        state.record_initial(evaluation.energies)
        atom_rows, cell_rows = state.generalised_forces(evaluation.forces, evaluation.stresses, batch.cells)
        worst = state.max_force(atom_rows, cell_rows)
        finite = torch.isfinite(evaluation.energies) & torch.isfinite(worst)
        converged = worst < fmax
        swelling = torch.linalg.det(batch.cells).abs() / torch.linalg.det(state.cell0).abs()
        ran_away = (swelling <= 1 / VOLUME_LIMIT) | (swelling >= VOLUME_LIMIT)  # invalid_reason names it
        done = converged | (state.steps >= max_steps) | ~finite | ran_away
        if bool(done.any()):
            finished = state.select(done)
            for cell_id, result in _finished(cells, finished, batch.select(done), evaluation, errors, done, converged, finite):
                queue.retire(cell_id, result)
            evaluator.forget(finished.keys or [])
        keep = ~done
        state.step(atom_rows, cell_rows, keep)
        state = state.select(keep) if bool(keep.any()) else None
    return queue.in_order()


def _finished(
    cells: Sequence[Atoms],
    finished: FireState,
    final: CellBatch,
    evaluation: BatchResult,
    errors: dict[int, str],
    done: torch.Tensor,
    converged: torch.Tensor,
    finite: torch.Tensor,
) -> list[tuple[int, RelaxResult]]:
    """(input index, RelaxResult) of each finished cell (the batch rows where done is True), in batch order;
    `finished` and `final` are the optimizer state and the structures of those rows."""
    rows = done.nonzero().flatten().tolist()
    energies = evaluation.energies[done].tolist()
    converged_host, finite_host = converged[done].tolist(), finite[done].tolist()
    positions, lattices = final.positions.cpu().numpy(), final.cells.cpu().numpy()
    starts = cell_starts(final.counts).tolist()
    steps, initial_energies = finished.steps.tolist(), finished.initial_energy.tolist()
    out = []
    for k, (b, cell_id) in enumerate(zip(rows, finished.ids)):
        error = errors.get(b, "" if finite_host[k] else "non-finite energy, forces or stress")
        atoms = cells[cell_id].copy()
        atoms.calc = None
        atoms.set_cell(lattices[k], scale_atoms=False)
        atoms.positions = positions[starts[k] : starts[k] + len(atoms)]
        initial = initial_energies[k]
        result = RelaxResult(atoms, initial, energies[k] if not error else math.nan, steps[k], converged_host[k] and not error, error)
        out.append((cell_id, result))
    return out
