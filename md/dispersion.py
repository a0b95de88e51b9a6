"""Grimme's D3 dispersion with Becke-Johnson damping, added on top of a potential trained without it.

CHGNet and matgl's MatPES models learned PBE (and PBE+U) energies. PBE has no dispersion: it barely
binds the layers of graphite, MoS2 or V2O5, so relaxed subcells of those solids let their layers
drift apart or out of register (measured on C and MoS2: docs/log/accuracy.md, "Dispersion"). D3(BJ)
with PBE's parameters is the correction MACE-MP's `dispersion=True` adds to its PBE-trained
potential; `--potential chgnet+d3` adds it here.

The D3 terms themselves (C6 tables, coordination numbers, damping) come from torch-dftd (Preferred
Networks, MIT). We call its module on our own batched neighbour lists (md.neighbours) rather than
through its ASE calculator, so the correction batches with the potential; its calculator stays the
reference path (`with_d3_calculator`) the batched one is tested against.
"""

from __future__ import annotations

import torch
from ase.calculators.calculator import Calculator
from ase.units import Bohr

from amorph.md.evaluators import BatchEvaluator, _GraphEvaluator
from amorph.md.neighbours import SkinNeighbours
from amorph.md.state import BatchResult, CellBatch

# Pairs and coordination numbers within 40 bohr (21.2 A), as MACE-MP's dispersion option takes them;
# the C6/r^6 tail beyond adds a few meV/atom, nearly the same for polymorphs of one formula.
D3_CUTOFF = 40.0 * Bohr
D3_DAMPING = "bj"
D3_FUNCTIONAL = "pbe"  # the functional the potentials were trained on
D3_MAX_Z = 94  # torch-dftd's reference C6 tables cover H..Pu


def d3_parameters() -> dict[str, float]:
    """PBE's D3(BJ) parameters (s6 1, s8 0.7875, a1 0.4289, a2 4.4407 bohr; Grimme et al. 2011)."""
    from torch_dftd.dftd3_xc_params import get_dftd3_default_params

    return get_dftd3_default_params(D3_DAMPING, D3_FUNCTIONAL)


def with_d3_calculator(inner: Calculator) -> Calculator:
    """An ASE calculator of `inner` plus D3(BJ): torch-dftd's own calculator, one cell at a time."""
    from torch_dftd.torch_dftd3_calculator import TorchDFTD3Calculator

    return TorchDFTD3Calculator(
        dft=inner, damping=D3_DAMPING, xc=D3_FUNCTIONAL, cutoff=D3_CUTOFF, cnthr=D3_CUTOFF, dtype=torch.float64
    )


class DispersionEvaluator(_GraphEvaluator):
    """Another evaluator's energies, forces and stresses plus D3(BJ), for the same packed cells; its own
    neighbour lists (at D3's cutoff) are kept per cell as the graph evaluators keep theirs.

    Forces are -dE/dr and the stress dE/d(strain)/V from one autograd pass over the D3 energy of
    strained positions, lattices and image vectors (as md.evaluators.ChgnetEvaluator does for CHGNet).
    """

    def __init__(self, inner: BatchEvaluator, skin: float = 1.0):
        from torch_dftd.nn.dftd3_module import DFTD3Module

        self.inner = inner
        self.device = inner.device
        self.module = DFTD3Module(
            d3_parameters(), cutoff=D3_CUTOFF, cnthr=D3_CUTOFF, dtype=torch.float64, bidirectional=True
        ).to(self.device)
        self.neighbours = SkinNeighbours(D3_CUTOFF, skin)

    @property
    def max_atoms(self) -> int:
        return self.inner.max_atoms

    @max_atoms.setter
    def max_atoms(self, value: int) -> None:
        self.inner.max_atoms = value

    def out_of_memory(self, atoms_in: int) -> None:
        self.inner.out_of_memory(atoms_in)

    def forget(self, keys: list[int]) -> None:
        self.inner.forget(keys)
        super().forget(keys)

    def evaluate_batch(self, batch: CellBatch) -> BatchResult:
        base = self.inner.evaluate_batch(batch)
        d3 = self.dispersion(batch)
        out = base.energies.device
        return BatchResult(
            base.energies + d3.energies.to(out), base.forces + d3.forces.to(out), base.stresses + d3.stresses.to(out)
        )

    def dispersion(self, batch: CellBatch) -> BatchResult:
        """The D3(BJ) part alone: energies (eV), forces (eV/A), stresses (eV/A^3, ASE's sign)."""
        device = torch.device(self.device)
        numbers = batch.numbers.to(device)
        if bool((numbers > D3_MAX_Z).any()):
            raise ValueError(f"D3 covers elements up to Z = {D3_MAX_Z}")
        _, lattices, atom_cell, _, edges, shifts = self._listed(batch)
        positions = batch.positions.to(device, torch.float64).detach().requires_grad_(True)
        strain = torch.zeros_like(lattices, requires_grad=True)
        deform = torch.eye(3, dtype=torch.float64, device=device) + 0.5 * (strain + strain.transpose(1, 2))
        strained = torch.einsum("ni,nij->nj", positions, deform[atom_cell])
        strained_lattices = lattices @ deform
        edge_cell = atom_cell[edges[0]]
        image_vectors = torch.einsum("ek,ekl->el", shifts, strained_lattices[edge_cell])
        energies = self.module.calc_energy_batch(
            numbers, strained, edges, cell=strained_lattices, shift_pos=image_vectors,
            batch=atom_cell, batch_edge=edge_cell, damping=D3_DAMPING,
        )
        if energies.requires_grad:
            position_grad, strain_grad = torch.autograd.grad(energies.sum(), [positions, strain])
        else:  # no pair within the cutoff (a lone atom in a large cell): no force, no stress
            position_grad, strain_grad = torch.zeros_like(positions), torch.zeros_like(lattices)
        volumes = torch.linalg.det(lattices).abs()
        out = batch.positions.device
        return BatchResult(
            energies.detach().to(out, torch.float64),
            (-position_grad).to(out, torch.float64),
            (strain_grad / volumes[:, None, None]).to(out, torch.float64),
        )
