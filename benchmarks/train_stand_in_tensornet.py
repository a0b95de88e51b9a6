"""Train the TensorNet stand-in the relaxation benchmark uses when matgl's pretrained weights are out of reach.

matgl's pretrained TensorNet comes from Hugging Face at run time, which this project's CI machines
cannot reach. To time the batched engine on a TensorNet anyway, this script fits a model of the
MatPES TensorNet's size (64 units, 2 interaction blocks, 32 radial functions, 5 A cutoff: the cost
per step is what matters) to CHGNet energies, forces and stresses of TiO2 subcells taken along CHGNet
relaxations, so that relaxing with it looks like relaxing with a real potential (smooth, bounded,
converging). It is a benchmark fixture, NOT a potential for science: it knows only Ti and O and a few
hundred configurations.

    python benchmarks/train_stand_in_tensornet.py --subcells 48 --minutes 7 --frames frames.extxyz \
        --out benchmarks/models/tensornet-tio2-stand-in
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from ase.stress import full_3x3_to_voigt_6_stress
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.md.potentials import load_potential
from amorph.motifs.subcells import extract_subcells
from amorph.settings import PackingSettings
from amorph.start import start_structure
from amorph.threads import one_blas_thread


def labelled_frames(n_subcells: int, steps: int, every: int, seed: int) -> list[tuple[Atoms, float, np.ndarray, np.ndarray]]:
    """CHGNet-labelled frames: (atoms, energy, forces, stress 3x3 in eV/A^3) along relaxations of subcells."""
    chgnet = load_potential("chgnet", "cpu")
    calc = chgnet.make_calculator()
    formula = parse_formula("TiO2")
    frames = []
    starts = []
    for k in range(max(1, n_subcells // 16)):
        cell, _ = start_structure(formula, PackingSettings(target_atoms=48, grow_to=0), np.random.default_rng([seed, k]), known_polymorphs("TiO2"))
        subcells, _ = extract_subcells(cell, formula, d_frac=0.1, n_min=3, n_max=12, max_subcells=16,
                                       rng=np.random.default_rng([seed, k, 1]), sizes=[6, 12],
                                       push_cut_contacts=False)  # as the stored model was trained
        starts.extend(s.atoms for s in subcells)
    for polymorph in known_polymorphs("TiO2"):
        starts.append(AseAtomsAdaptor.get_atoms(polymorph.structure))
    for atoms in starts:
        atoms = atoms.copy()
        atoms.calc = calc

        def record(a=atoms):
            frames.append((a.copy(), float(a.get_potential_energy()), a.get_forces().copy(), a.get_stress(voigt=False).copy()))

        opt = FIRE(FrechetCellFilter(atoms), logfile=None)
        opt.attach(record, interval=every)
        try:
            opt.run(fmax=0.05, steps=steps)
        except Exception:  # a subcell CHGNet cannot handle: keep what was recorded
            continue
    return frames


def write_frames(path: str, frames) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    images = []
    for atoms, energy, forces, stress in frames:
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=full_3x3_to_voigt_6_stress(stress))
        images.append(atoms)
    write(path, images, format="extxyz")


def read_frames(path: str):
    from ase.io import read

    return [(a, float(a.get_potential_energy()), a.get_forces(), a.get_stress(voigt=False)) for a in read(path, index=":")]


def train(frames, minutes: float, seed: int):
    import matgl
    from matgl.apps.pes import Potential
    from matgl.ext.ase import Atoms2Graph
    from matgl.models import TensorNet
    from torch_geometric.data import Batch

    torch.manual_seed(seed)
    elements = ("O", "Ti")
    model = TensorNet(element_types=elements, units=64, nblocks=2, num_rbf=32, cutoff=5.0, is_intensive=False)
    per_atom = np.mean([e / len(a) for a, e, _, _ in frames])
    potential = Potential(model=model, element_refs=np.array([per_atom, per_atom]), calc_stresses=True)
    converter = Atoms2Graph(elements, 5.0)
    graphs = [converter.get_graph(a) for a, _, _, _ in frames]
    optimizer = torch.optim.Adam(potential.model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    deadline = time.perf_counter() + 60 * minutes
    epoch = 0
    potential.train()
    while time.perf_counter() < deadline:
        order = rng.permutation(len(frames))
        total = 0.0
        for start in range(0, len(order), 16):
            ids = order[start : start + 16]
            batch = Batch.from_data_list([graphs[i][0] for i in ids])
            lattice = torch.stack([torch.as_tensor(graphs[i][1]).reshape(3, 3) for i in ids]).to(matgl.float_th)
            state = torch.zeros(len(ids), 2, dtype=matgl.float_th)
            energies, forces, stresses = potential(batch, lattice, state)[:3]
            n_atoms = torch.tensor([len(frames[i][0]) for i in ids], dtype=matgl.float_th)
            e_ref = torch.tensor([frames[i][1] for i in ids], dtype=matgl.float_th)
            f_ref = torch.as_tensor(np.concatenate([frames[i][2] for i in ids]), dtype=matgl.float_th)
            s_ref = torch.as_tensor(np.concatenate([frames[i][3] for i in ids]), dtype=matgl.float_th) / 0.006241509  # eV/A^3 -> GPa
            huber = torch.nn.functional.huber_loss
            loss = (
                huber(energies / n_atoms, e_ref / n_atoms, delta=0.5)
                + huber(forces, f_ref, delta=1.0)
                + 1e-2 * huber(stresses, s_ref, delta=5.0)
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(ids)
        epoch += 1
        print(f"epoch {epoch}: loss {total / len(frames):.4f}", flush=True)
    potential.eval()
    return potential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subcells", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--max-force", type=float, default=20.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", default="", help="extxyz file: labelled frames are read from it if it exists, else written to it")
    args = parser.parse_args()
    one_blas_thread()  # as a run does (amorph.threads)
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    if args.frames and Path(args.frames).exists():
        frames = read_frames(args.frames)
    else:
        frames = labelled_frames(args.subcells, args.steps, args.every, args.seed)
        if args.frames:
            write_frames(args.frames, frames)
    print(f"{len(frames)} CHGNet-labelled frames in {time.perf_counter() - started:.0f} s", flush=True)
    # the first steps from a random packing carry forces of up to ~300 eV/A; a fit to them would spend
    # the model on the least relevant configurations
    frames = [f for f in frames if np.abs(f[2]).max() < args.max_force]
    print(f"{len(frames)} frames with forces below {args.max_force} eV/A", flush=True)
    potential = train(frames, args.minutes, args.seed)
    potential.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
