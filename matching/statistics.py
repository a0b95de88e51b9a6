"""How sure is the prediction? Bootstrap confidence intervals of polymorph shares.

Subcells cut from one amorphous cell are not independent of each other, and replicas are the truly
independent samples, so the bootstrap is hierarchical: draw replicas with replacement, then subcells
with replacement within each drawn replica. With one replica it is the ordinary bootstrap over subcells.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_BOOTSTRAP = 1000
CONFIDENCE = 0.95


def resamples(replicas: Sequence[int], rng: np.random.Generator, n_boot: int) -> list[np.ndarray]:
    """Index arrays of n_boot hierarchical bootstrap samples."""
    replicas_arr = np.asarray(replicas)
    groups = [np.flatnonzero(replicas_arr == r) for r in np.unique(replicas_arr)]
    samples = []
    for _ in range(n_boot):
        chosen = rng.integers(len(groups), size=len(groups)) if len(groups) > 1 else [0]
        samples.append(np.concatenate([rng.choice(groups[g], size=len(groups[g])) for g in chosen]))
    return samples


def share_intervals(
    labels: Sequence[str], replicas: Sequence[int], rng: np.random.Generator, n_boot: int = N_BOOTSTRAP
) -> dict[str, tuple[float, float]]:
    """95% interval of each label's share of the valid subcells."""
    if not labels:
        return {}
    names = sorted(set(labels))
    codes = np.array([names.index(label) for label in labels])
    shares = np.array([np.bincount(codes[idx], minlength=len(names)) / len(idx) for idx in resamples(replicas, rng, n_boot)])
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(shares, [tail, 100 - tail], axis=0)
    return {name: (float(low[k]), float(high[k])) for k, name in enumerate(names)}


@dataclass(frozen=True)
class Separation:
    """The leading known polymorph against the runner-up, after some subcells."""

    leader: str | None
    runner_up: str | None
    difference: float  # share(leader) - share(runner-up)
    low: float  # 95% interval of the difference
    high: float

    @property
    def separated(self) -> bool:
        return self.leader is not None and self.low > 0


def separation(
    labels: Sequence[str], known: set[str], replicas: Sequence[int], rng: np.random.Generator, n_boot: int = N_BOOTSTRAP
) -> Separation:
    """Is the commonest known polymorph ahead of the next one (known) at 95% confidence?"""
    counts = Counter(label for label in labels if label in known)
    ranked = [name for name, _ in counts.most_common()]
    if not ranked:
        return Separation(None, None, 0.0, 0.0, 0.0)
    leader = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    lead = np.array([label == leader for label in labels], dtype=float)
    second = np.array([label == runner for label in labels], dtype=float)
    diffs = np.array([lead[idx].mean() - second[idx].mean() for idx in resamples(replicas, rng, n_boot)])
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Separation(leader, runner, float(lead.mean() - second.mean()), float(low), float(high))


def unseen_chance(counts: Sequence[int]) -> float | None:
    """Good-Turing's estimate of the chance that one more subcell becomes a product seen in none so far:
    the share of subcells whose product was seen exactly once (Good 1953). None without subcells.
    A run whose products are mostly one-offs has not sampled what its cell can become."""
    total = sum(counts)
    return sum(1 for c in counts if c == 1) / total if total else None
