"""Pictures of a finished run (PNG, in the run folder's figures/): what a scientist looks at first.

* melt_quench.png: target and actual temperature, and potential energy, against time;
* rdf.png: partial radial distribution functions of the amorphous cell beside those of the
  predicted and the ground-state polymorph;
* shares.png: each product's share of the valid subcells with its 95% interval;
* energy_vs_share.png: each product's lowest energy per atom against its share (the Ostwald
  picture: the frequent product need not be the lowest one);
* products/NAME.png: a rendered image of each product's structure (for report.html).

matplotlib with the Agg backend: no display is needed, so it runs on a cluster node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms
    from matplotlib.figure import Figure

MELT_QUENCH_PNG = "melt_quench.png"
RDF_PNG = "rdf.png"
SHARES_PNG = "shares.png"
ENERGY_SHARE_PNG = "energy_vs_share.png"
SCREEN_PNG = "screen.png"
MOST_BARS = 12  # products shown in the share chart: the known ones first, then the most frequent others
RDF_MAX = 6.0  # A
RDF_BIN = 0.02  # A
RDF_SMEAR = 0.05  # A: Gaussian width applied to every curve alike, so a crystal's shells show as peaks
DPI = 110


def _figure(width: float, height: float) -> Figure:
    """A figure not tied to pyplot's global state (safe in worker threads, never shown)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def melt_quench_figure(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Temperature (target and actual) and potential energy per atom against time, one line per replica."""
    fig = _figure(7.0, 4.6)
    temp_ax, energy_ax = fig.subplots(2, 1, sharex=True)
    replicas = sorted({int(r["replica"]) for r in rows})
    for replica in replicas:
        mine = [r for r in rows if int(r["replica"]) == replica]
        t = np.array([float(r["time_fs"]) for r in mine]) / 1000.0
        label = f"replica {replica}" if len(replicas) > 1 else "actual"
        temp_ax.plot(t, [float(r["temperature"]) for r in mine], lw=0.8, alpha=0.8, label=label)
        energy_ax.plot(t, [float(r["potential_energy"]) for r in mine], lw=0.8)
        if replica == replicas[0]:
            temp_ax.plot(t, [float(r["target_temperature"]) for r in mine], "k--", lw=1.2, label="target")
    # the random packing's first steps run far hotter than the melt (docs/method.md): keep the scale
    # on the schedule and say how hot the start was
    hottest = max(float(r["temperature"]) for r in rows)
    ceiling = 2.0 * max(float(r["target_temperature"]) for r in rows)
    if hottest > ceiling:
        temp_ax.set_ylim(0, ceiling)
        temp_ax.text(0.99, 0.04, f"start off scale, up to {hottest:.0f} K", transform=temp_ax.transAxes, ha="right", fontsize="small")
    temp_ax.set_ylabel("temperature (K)")
    temp_ax.legend(loc="upper right", fontsize="small")
    energy_ax.set_ylabel("potential energy (eV/atom)")
    energy_ax.set_xlabel("time (ps)")
    temp_ax.set_title("Melt-quench")
    return _save(fig, path)


def partial_rdf(atoms: Atoms, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """g_ab(r) for a figure: finer bins and less smearing than the similarity takes (matching.local_structure)."""
    from amorph.matching.local_structure import partial_rdf as rdf

    return rdf(atoms, a, b, RDF_MAX, RDF_BIN, RDF_SMEAR)


def rdf_figure(amorphous: Sequence[Atoms], crystals: dict[str, Atoms], path: Path) -> Path:
    """One panel per element pair: the amorphous cell(s) (averaged over replicas) and each crystal; a last
    panel with the mean coordination numbers of each, over the similarity's bond criterion."""
    from amorph.matching.local_structure import BOND_FACTOR, bond_length, local_structure

    elements = sorted({s for atoms in amorphous for s in atoms.get_chemical_symbols()})
    pairs = [(a, b) for k, a in enumerate(elements) for b in elements[k:]]
    panels = len(pairs) + 1
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig = _figure(3.6 * columns, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    colours = ["k"] + [f"C{k}" for k in range(len(crystals))]
    for ax, (a, b) in zip(axes, pairs):
        curves = [partial_rdf(cell, a, b) for cell in amorphous]
        r, g = curves[0][0], np.mean([curve[1] for curve in curves], axis=0)
        ax.plot(r, g, colours[0], lw=1.4, label="amorphous")
        for colour, (label, crystal) in zip(colours[1:], crystals.items()):
            ax.plot(r, partial_rdf(crystal, a, b)[1], color=colour, lw=0.9, alpha=0.85, label=label)
        ax.axvline(bond_length(a, b), color="0.6", lw=0.6, ls=":")
        ax.set_title(f"{a}-{b}")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_xlim(0, RDF_MAX)
    species = tuple(elements)
    ordered = [f"{a}-{b}" for a in elements for b in elements]
    shown = {"amorphous": [local_structure(cell, species).mean_coordination for cell in amorphous]}
    shown |= {label: [local_structure(crystal, species).mean_coordination] for label, crystal in crystals.items()}
    ax = axes[len(pairs)]
    width = 0.8 / len(shown)
    for k, (colour, (label, found)) in enumerate(zip(colours, shown.items())):
        values = [np.mean([f.get(pair, 0.0) for f in found]) for pair in ordered]
        ax.bar(np.arange(len(ordered)) + (k - (len(shown) - 1) / 2) * width, values, width, color=colour, label=label)
    ax.set_xticks(np.arange(len(ordered)), ordered, fontsize="small", rotation=30)
    ax.set_ylabel("neighbours b of each a")
    ax.set_title(f"mean coordination a-b\n(bond < {BOND_FACTOR:g}× covalent radii)", fontsize="small")
    for ax in axes[panels:]:
        ax.set_visible(False)
    axes[0].legend(fontsize="small")
    return _save(fig, path)


def chosen_products(polymorphs: Sequence[dict[str, Any]], most: int = MOST_BARS) -> list[dict[str, Any]]:
    """The rows worth a bar (or a picture): every known polymorph found, then the most frequent others."""
    known = [p for p in polymorphs if p["known"] and p["count"] > 0]
    others = sorted((p for p in polymorphs if not p["known"]), key=lambda p: -p["count"])
    return (known + others)[:most]


def shares_figure(polymorphs: Sequence[dict[str, Any]], predicted: str | None, path: Path) -> Path:
    """Bar chart of shares with 95% intervals; the predicted polymorph in a second colour."""
    rows = chosen_products(polymorphs)
    fig = _figure(max(4.5, 0.6 * len(rows) + 2), 3.6)
    ax = fig.subplots()
    x = np.arange(len(rows))
    share = np.array([100 * p["share"] for p in rows])
    low = np.array([100 * p.get("share_ci_low", p["share"]) for p in rows])
    high = np.array([100 * p.get("share_ci_high", p["share"]) for p in rows])
    colours = ["tab:orange" if p["name"] == predicted else ("tab:blue" if p["known"] else "0.65") for p in rows]
    ax.bar(x, share, color=colours)
    ax.errorbar(x, share, yerr=[share - low, high - share], fmt="none", ecolor="k", capsize=3, lw=1)
    ax.set_xticks(x, [p["name"] for p in rows], rotation=40, ha="right")
    ax.set_ylabel("share of valid subcells (%)")
    ax.set_title("Products (orange: predicted; grey: no known polymorph)")
    return _save(fig, path)


def energy_share_figure(polymorphs: Sequence[dict[str, Any]], predicted: str | None, path: Path) -> Path:
    """Lowest energy per atom (meV/atom above the lowest product) against share, every product."""
    rows = [p for p in polymorphs if p["count"] > 0 and p.get("lowest_energy_per_atom") is not None]
    fig = _figure(5.6, 4.0)
    ax = fig.subplots()
    if rows:
        lowest = min(p["lowest_energy_per_atom"] for p in rows)
        for p in rows:
            x, y = 100 * p["share"], 1000 * (p["lowest_energy_per_atom"] - lowest)
            colour = "tab:orange" if p["name"] == predicted else ("tab:blue" if p["known"] else "0.6")
            ax.scatter([x], [y], s=40 if p["known"] else 18, zorder=3, color=colour)
            if p["known"]:
                ax.annotate(p["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xlabel("share of valid subcells (%)")
    ax.set_ylabel("lowest energy (meV/atom above the lowest product)")
    ax.set_title("Energy against share (blue: known polymorphs)")
    return _save(fig, path)


def structure_image(atoms: Atoms, path: Path) -> Path:
    """A still of one product's cell (ASE's matplotlib renderer, viewed slightly off-axis)."""
    from ase.visualize.plot import plot_atoms

    fig = _figure(2.6, 2.6)
    ax = fig.subplots()
    plot_atoms(atoms, ax, rotation="10x,-20y,0z", radii=0.5, show_unit_cell=2)
    ax.set_axis_off()
    return _save(fig, path)


def screen_figure(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per formula: how far the predicted polymorph lies above the ground state (by energy
    under the same potential), labelled "predicted / ground state"; 0 where they are the same, orange
    where they differ (a metastable polymorph first: Ostwald's rule of stages), failures in red."""
    fig = _figure(7.0, 0.45 * len(rows) + 1.4)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    for k, r in zip(y, rows):
        if r["status"] != "done":
            ax.text(0, k, "  failed: " + str(r.get("error", ""))[:70], va="center", color="tab:red", fontsize="small")
            continue
        above = r.get("predicted_above_ground_mev")
        value = float(above) if above is not None and not (isinstance(above, float) and math.isnan(above)) else 0.0
        colour = "tab:orange" if r.get("differs") else "tab:green"
        ax.barh(k, value, color=colour, height=0.6)
        ax.plot([value], [k], "o", color=colour)
        note = " (no energy: not a known polymorph)" if above is None and r.get("predicted") else ""
        ax.text(value, k, f"  {r.get('predicted') or 'none'} / {r.get('ground_state') or '?'}{note}", va="center", fontsize="small")
    several = len({r.get("potential") for r in rows}) > 1
    ax.set_yticks(y, [r["formula"] + (f"\n{r.get('potential')}" if several else "") for r in rows])
    ax.axvline(0, color="k", lw=0.8)
    right = max([float(r["predicted_above_ground_mev"]) for r in rows if r.get("predicted_above_ground_mev") is not None] + [10.0])
    ax.set_xlim(-0.05 * right, 1.6 * right)
    ax.set_xlabel("predicted polymorph above the ground state (meV/atom)")
    ax.set_title("Screen: first to nucleate / ground state")
    return _save(fig, path)
