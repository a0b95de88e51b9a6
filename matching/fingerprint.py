"""A structural fingerprint: how close is an unknown product to each known polymorph?

Partial radial distribution functions (one per element pair), with distances in units of the
mean interatomic spacing (V/N)^(1/3) so that a product strained by the potential still looks like
its crystal, smeared by Gaussians and normalised to unit length. The distance between two
fingerprints is 1 - cosine similarity: 0 for the same local order, up to 1 for nothing in common.
Written here because the usual fingerprint libraries (matminer, dscribe) are not dependencies.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Structure

R_MAX = 3.0  # in units of (V/N)^(1/3): a few coordination shells
N_BINS = 60
SIGMA = 0.05  # Gaussian smearing, same units


def fingerprint(structure: Structure, elements: list[str]) -> np.ndarray:
    """Concatenated partial RDFs over the sorted element pairs of `elements`, unit length."""
    scale = (structure.volume / len(structure)) ** (1 / 3)
    centres, neighbours, _, distances = structure.get_neighbor_list(r=R_MAX * scale)
    symbols = np.array([site.specie.symbol for site in structure])
    grid = np.linspace(0, R_MAX, N_BINS)
    parts = []
    for a, b in itertools.combinations_with_replacement(sorted(elements), 2):
        pair = ((symbols[centres] == a) & (symbols[neighbours] == b)) | ((symbols[centres] == b) & (symbols[neighbours] == a))
        r = distances[pair] / scale
        n_centres = max(1, int(np.sum((symbols == a) | (symbols == b))))
        # weight each neighbour by 1/r^2 so the outer shells do not swamp the first one
        g = np.exp(-0.5 * ((grid[:, None] - r[None, :]) / SIGMA) ** 2) / np.maximum(r, 0.5) ** 2
        parts.append(g.sum(axis=1) / n_centres)
    vector = np.concatenate(parts) if parts else np.zeros(N_BINS)
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


def fingerprint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine similarity of two unit fingerprints, in [0, 1]."""
    return float(np.clip(1.0 - np.dot(a, b), 0.0, 1.0))
