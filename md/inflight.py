"""In-flight batching: which cells are worked on together, apart from the physics that moves them.

As torch-sim's `InFlightAutoBatcher`: cells wait in a queue; whenever the batch has room (atoms per
forward pass, or a fixed number of cells), the next waiting cells are admitted; a cell that is done
is retired at once, so the batch stays full until the queue is empty; results come back in the order
the cells were given. The optimizer (md.fire) only steps; it never sees the queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Result = TypeVar("Result")


class InFlightQueue(Generic[Result]):
    """Admits, retires and restores order for cells of the given sizes (atoms per cell).

    `in_flight` caps the cells worked on together; without it, cells are admitted while the batch
    holds at most `max_atoms` atoms (asked at each admission, since an evaluator may shrink its passes
    after running out of memory). A batch always admits at least one cell, however large.
    """

    def __init__(self, sizes: Sequence[int], in_flight: int | None = None, on_done: Callable[[int, Result], None] | None = None):
        self.sizes = list(sizes)
        self.in_flight = in_flight
        self.on_done = on_done
        self.waiting = deque(range(len(self.sizes)))
        self.results: list[Result | None] = [None] * len(self.sizes)
        self.retired = 0

    @property
    def finished(self) -> bool:
        return self.retired == len(self.sizes)

    def admit(self, atoms_in_flight: int, cells_in_flight: int, max_atoms: int) -> list[int]:
        """Indices of the waiting cells that join a batch now holding these atoms and cells."""
        chosen: list[int] = []
        atoms = atoms_in_flight
        while self.waiting and (
            (cells_in_flight == 0 and not chosen)
            or (self.in_flight is not None and cells_in_flight + len(chosen) < self.in_flight)
            or (self.in_flight is None and atoms + self.sizes[self.waiting[0]] <= max_atoms)
        ):
            chosen.append(self.waiting.popleft())
            atoms += self.sizes[chosen[-1]]
        return chosen

    def retire(self, index: int, result: Result) -> None:
        """Cell `index` is done with this result."""
        self.results[index] = result
        self.retired += 1
        if self.on_done is not None:
            self.on_done(index, result)

    def in_order(self) -> list[Result]:
        """Every result, in the order the cells were given."""
        if not self.finished:
            raise RuntimeError(f"{len(self.sizes) - self.retired} cells are not done")
        return [r for r in self.results if r is not None]
