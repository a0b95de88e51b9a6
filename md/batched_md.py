"""Several melt-quench trajectories at once, with one batched force call per MD step for all of them.

Each replica runs the ordinary ASE thermostat loop (md.dynamics) in its own thread, so every replica
is integrated exactly as a single run would be. Their calculators meet at a barrier: when every
running replica has asked for forces, the cells are evaluated in one batched pass and each thread
gets its own answer. A replica that finishes leaves the barrier, so the others never wait for it.
Only one thread at a time runs the model; the threads exist to keep the ASE integrators unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from amorph.md.evaluators import BatchEvaluator, Evaluation, new_keys
from amorph.md.potentials import LoadedPotential

Outcome = TypeVar("Outcome")


class BatchBarrier:
    """Collects one cell per running replica, evaluates them together, hands out the results."""

    def __init__(self, evaluator: BatchEvaluator, members: int):
        self.evaluator = evaluator
        self.members = members
        self.condition = threading.Condition()
        self.pending: dict[int, Atoms] = {}
        self.done: dict[int, Evaluation | BaseException] = {}
        self.keys = new_keys(members)  # one name per replica: its neighbour list can be reused between steps

    def _run_batch_locked(self) -> None:
        ids = sorted(self.pending)
        try:
            results: Sequence[Evaluation | BaseException] = self.evaluator.evaluate(
                [self.pending[i] for i in ids], keys=[self.keys[i] for i in ids]
            )
        except BaseException as err:  # every waiting replica gets the error
            results = [err] * len(ids)
        self.done.update(zip(ids, results))
        self.pending.clear()
        self.condition.notify_all()

    def request(self, replica: int, atoms: Atoms) -> Evaluation:
        with self.condition:
            self.pending[replica] = atoms.copy()
            if len(self.pending) >= self.members:
                self._run_batch_locked()
            while replica not in self.done:
                self.condition.wait()
            result = self.done.pop(replica)
        if isinstance(result, BaseException):
            raise result
        return result

    def leave(self) -> None:
        with self.condition:
            self.members -= 1
            if self.pending and len(self.pending) >= self.members:
                self._run_batch_locked()


class BarrierCalculator(Calculator):
    """An ASE calculator whose every call goes through the shared batch barrier."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def __init__(self, barrier: BatchBarrier, replica: int):
        super().__init__()
        self.barrier = barrier
        self.replica = replica

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms is None:  # Calculator.calculate has just set it
            raise RuntimeError("ASE called calculate without atoms")
        result = self.barrier.request(self.replica, self.atoms)
        self.results = {
            "energy": result.energy,
            "free_energy": result.energy,
            "forces": result.forces,
            "stress": full_3x3_to_voigt_6_stress(result.stress),
        }


def run_replicas(
    starts: Sequence[Atoms],
    potential: LoadedPotential,
    evaluator: BatchEvaluator,
    run_one: Callable[[int, Atoms, LoadedPotential], Outcome],
    together: bool = True,
) -> list[Outcome]:
    """Call run_one(k, start_k, potential_k) for every replica, where potential_k's calculators evaluate
    through `evaluator`. together: every replica in its own thread, all meeting at one batch barrier
    (one batched force call per MD step); otherwise one replica after another, each alone through the
    evaluator (for CHGNet 2.2-2.5x faster per MD step than its ASE calculator: one autograd pass on
    graphs built on the device, see md.evaluators.ChgnetEvaluator).
    Results in replica order."""
    groups = [list(range(len(starts)))] if together else [[k] for k in range(len(starts))]
    results: dict[int, Outcome] = {}
    for group in groups:
        barrier = BatchBarrier(evaluator, len(group))

        def worker(slot: int, k: int, barrier: BatchBarrier = barrier) -> Outcome:  # this group's barrier
            mine = replace(potential, make_calculator=lambda: BarrierCalculator(barrier, slot))
            try:
                return run_one(k, starts[k], mine)
            finally:
                barrier.leave()

        try:
            if len(group) == 1:  # in this thread: torch ran 1.5x slower in a fresh thread (24-atom CHGNet MD, 2 cores)
                results[group[0]] = worker(0, group[0])
            else:
                with ThreadPoolExecutor(max_workers=len(group)) as pool:
                    results.update(zip(group, pool.map(worker, range(len(group)), group)))
        finally:
            evaluator.forget(barrier.keys)
    return [results[k] for k in range(len(starts))]


def batch_replicas(replicas: int, device: str) -> bool:
    """Whether several replicas should share batched force calls: only on a GPU. On 2 CPU cores batching
    them measured 0.70x of running them one after another (benchmarks/md_replicas.py --small, CHGNet:
    18.3 s vs 12.8 s)."""
    return replicas > 1 and device == "cuda"
