"""SevenNet on many cells per forward pass: sevenn's own graphs, batched the way its training batches them.

Each cell's graph is built on the host by sevenn (unlabeled_atoms_to_graph, as its ASE calculator
does); the graphs are then collated into one torch_geometric batch and the model runs once for all of
them. Unlike md.evaluators' CHGNet and matgl paths, neighbour lists are not kept between steps: sevenn
builds its edges inside that converter and we call it rather than reimplement its graph format.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from amorph.md.evaluators import BatchEvaluator
from amorph.md.potentials import LoadedPotential
from amorph.md.state import Evaluation


class SevenNetEvaluator(BatchEvaluator):
    """A SevenNet model (LoadedPotential.model, with its cutoff and modal) on batches of cells."""

    def __init__(self, potential: LoadedPotential, max_atoms: int):
        # a copy in sevenn's batch mode: the calculator's own model is set for one graph at a time
        model = copy.deepcopy(potential.torch_model())
        model.set_is_batch_data(True)
        self.model = model
        self.device = potential.device
        self.cutoff = float(model.cutoff)
        self.modal = potential.modal
        self.max_atoms = max_atoms

    def evaluate(self, cells: Sequence[Atoms], keys: list[int] | None = None) -> list[Evaluation]:
        import sevenn._keys as KEY
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph
        from torch_geometric.data import Batch

        graphs = []
        for cell in cells:
            data = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(cell, self.cutoff, with_shift=False))
            if self.modal:
                data[KEY.DATA_MODALITY] = self.modal
            graphs.append(data)
        batch = Batch.from_data_list(graphs).to(self.device)
        output = self.model(batch)
        energies = output[KEY.PRED_TOTAL_ENERGY].detach().cpu().double().numpy().reshape(-1)
        forces = output[KEY.PRED_FORCE].detach().cpu().double().numpy()
        # sevenn's stress: the negative of ASE's, in the order xx yy zz xy yz zx (its calculator reorders it so)
        voigt = -output[KEY.PRED_STRESS].detach().cpu().double().numpy().reshape(len(cells), 6)
        out, start = [], 0
        for k, cell in enumerate(cells):
            xx, yy, zz, xy, yz, zx = voigt[k]
            stress = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])
            out.append(Evaluation(float(energies[k]), forces[start : start + len(cell)].copy(), stress))
            start += len(cell)
        return out

