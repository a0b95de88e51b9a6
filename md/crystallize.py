"""Stage 4: crystallization. Every subcell is relaxed (atoms and cell) under the run's potential,
judged (md.relax.judged_relaxation: fused, ran away, or fell through the potential's floor) and written, valid or
not; the adaptive and reserve modes decide how many are relaxed (amorph.sampling). Finished
relaxations go to a checkpoint as they come, so a stopped run loses none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ase import Atoms

from amorph.md.engine import Relaxer
from amorph.md.relax import RelaxResult, judged_relaxation
from amorph.progress import ProgressSink
from amorph.results import rundir as files
from amorph.results.checkpoint import CHECKPOINT, RelaxCheckpoint
from amorph.run import STREAM_BOOTSTRAP, STREAM_RULES
from amorph.sampling import ADAPTIVE_MIN_ROUND, ADAPTIVE_ROUNDS, relax_until_separated, relax_while_inconclusive

if TYPE_CHECKING:
    from amorph.run import Run


def crystallize_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 4: relax the subcells (atoms and cell); judge each result, keeping invalid ones.

    With --max-subcells auto the subcells are relaxed in rounds until the answer is clear
    (relax_until_separated); with a reserve (--more-if-inconclusive) the budget's subcells are
    relaxed, then reserve ones while the answer stays inconclusive (relax_while_inconclusive).
    sampling.json records every round of either.
    """
    subcells = run.out.read_atoms(files.SUBCELLS_INITIAL)
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    rx, sc = run.settings.relax, run.settings.subcells
    budget = [s for s in subcells if not s.info.get("reserve", False)]
    reserve = [s for s in subcells if s.info.get("reserve", False)][: sc.more_if_inconclusive]  # the setting caps a reserve cut earlier
    progress.start(f"Relaxing {len(budget)} subcells" + (" (stops when the answer is clear)" if sc.adaptive else ""), len(budget))
    round_size = len(budget) if not sc.adaptive else max(ADAPTIVE_MIN_ROUND, len(budget) // ADAPTIVE_ROUNDS)
    checkpoint = RelaxCheckpoint(run.out)
    if checkpoint.resumed:
        progress.note(f"resume: {checkpoint.resumed} subcells were relaxed before the stop ({CHECKPOINT})")
    sampling = None
    with Relaxer(run.potential, rx.engine, rx.fmax, rx.max_steps, expected_cells=round_size) as relaxer:
        lowest = min(e.energy / len(a) for a, e in zip(replicas, relaxer.evaluator.evaluate(replicas)))
        floor = lowest - rx.energy_drop_limit

        def relax(cells: list[Atoms]) -> list[Atoms]:
            """Relax and judge the cells not in the checkpoint; every finished one goes into it."""
            todo = [c for c in cells if int(c.info["subcell_id"]) not in checkpoint.done]
            for _ in range(len(cells) - len(todo)):
                progress.advance()

            def finished(index: int, result: RelaxResult) -> None:
                checkpoint.add(judged_relaxation(todo[index], result, rx.fusion_distance, floor))
                progress.advance()

            relaxer.relax(todo, on_done=finished)
            return [checkpoint.done[int(c.info["subcell_id"])] for c in cells]

        if sc.adaptive:
            relaxed, sampling = relax_until_separated(budget, relax, round_size, run.references(), run.rng(STREAM_BOOTSTRAP), progress,
                                                      run.settings.matching)
        elif reserve:
            relaxed, sampling, run.named = relax_while_inconclusive(
                budget, reserve, relax, run.references(), run.settings.rule, lambda: run.rng(STREAM_RULES), progress,
                run.settings.matching,
            )
        else:
            relaxed = relax(budget)
    progress.finish()
    if sampling is not None:
        run.out.write_json(files.SAMPLING, sampling)
    run.out.write_atoms(files.SUBCELLS_RELAXED, relaxed, "extxyz")
    checkpoint.remove()
