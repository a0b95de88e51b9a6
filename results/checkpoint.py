"""Stage 4's progress on disk: finished relaxations, written at least every minute of work.

The crystallization stage is most of a run (hours at the paper's scale); without this a kill or a
preempted GPU node would lose all of it, since a stage's output is written only when it ends. The
checkpoint holds each finished subcell as judged (valid or not, with its reason), keyed by
subcell_id; a resumed stage relaxes only the others. It is removed once subcells_relaxed.extxyz is
written.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from amorph.results.rundir import CHECKPOINT, RunDir

if TYPE_CHECKING:
    from ase import Atoms

CHECKPOINT_SECONDS = 60.0  # a kill loses at most this much relaxation work


def checkpoint_seconds() -> float:
    """CHECKPOINT_SECONDS, or AMORPH_CHECKPOINT_SECONDS where set (0: after every subcell; the
    kill-and-resume tests use it to stop runs between any two relaxations)."""
    try:
        return max(0.0, float(os.environ.get("AMORPH_CHECKPOINT_SECONDS", CHECKPOINT_SECONDS)))
    except ValueError:
        return CHECKPOINT_SECONDS


class RelaxCheckpoint:
    """Finished subcells of stage 4, read back when the stage resumes."""

    def __init__(self, out: RunDir, every: float | None = None):
        self.out, self.every = out, checkpoint_seconds() if every is None else every
        self.done: dict[int, Atoms] = {int(a.info["subcell_id"]): a for a in out.read_atoms(CHECKPOINT)} if out.has(CHECKPOINT) else {}
        self.resumed = len(self.done)
        self._saved_at = time.monotonic()
        self._unsaved = 0

    def add(self, atoms: Atoms) -> None:
        """One more finished subcell; write the checkpoint when `every` seconds have passed since the last."""
        self.done[int(atoms.info["subcell_id"])] = atoms
        self._unsaved += 1
        if time.monotonic() - self._saved_at >= self.every:
            self.save()

    def save(self) -> None:
        if self._unsaved:
            self.out.write_atoms(CHECKPOINT, [self.done[k] for k in sorted(self.done)], "extxyz")  # atomic: all or nothing
        self._saved_at, self._unsaved = time.monotonic(), 0

    def remove(self) -> None:
        self.out.file(CHECKPOINT).unlink(missing_ok=True)
