"""Universal potentials whose weights ship inside their Python package, so they run offline:
SevenNet (`sevenn`: SevenNet-0, -l3i5 and the multi-fidelity -mf-0) and DIEP (`diep`, trained on
MatPES r2SCAN). Both are optional: `pip install "amorph[potentials]"`.

Neither package's loader is trusted to stay offline: sevenn downloads a checkpoint it does not find,
and diep's lower-level loader falls back to a download for an incomplete model folder. So the files
are looked for here first, and a missing one is an error that names it, never a download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path
from types import ModuleType

from ase.calculators.calculator import Calculator

from amorph.errors import AmorphError
from amorph.md.potentials import LoadedPotential, TorchModel, quiet, weights_checksum

EXTRA = "potentials"  # pyproject.toml's optional dependencies that install sevenn and diep


def optional_package(name: str, spec: str) -> ModuleType:
    """Import an optional potential package, or a one-line error naming the extra that installs it."""
    try:
        return import_module(name)
    except ImportError:
        raise AmorphError(
            f"--potential {spec} needs the '{name}' package: pip install \"amorph[{EXTRA}]\" "
            f"(from a checkout: pip install -e \".[{EXTRA}]\")"
        ) from None


@dataclass(frozen=True)
class SevenNetModel:
    """A SevenNet checkpoint sevenn ships: its constant in sevenn._const and its training data (per head
    for a multi-fidelity model, whose heads amorph spells in lower case)."""

    constant: str
    training: dict[str, str]  # head ("" for a single-fidelity model) -> level of theory

    @property
    def modals(self) -> tuple[str, ...]:
        return tuple(k for k in self.training if k)


# Checkpoints that ship in the sevenn 0.13 wheel (the others, e.g. 7net-omat, download at run time).
SEVENNET_MODELS: dict[str, SevenNetModel] = {
    "7net-0": SevenNetModel("SEVENNET_0_11Jul2024", {"": "PBE/PBE+U (MPtrj)"}),
    "7net-l3i5": SevenNetModel("SEVENNET_l3i5", {"": "PBE/PBE+U (MPtrj)"}),
    "7net-mf-0": SevenNetModel("SEVENNET_MF_0", {"pbe": "PBE/PBE+U (MPtrj)", "r2scan": "r2SCAN (Materials Project r2SCAN)"}),
}
DEFAULT_SEVENNET = "7net-0"


def parse_sevennet(rest: str) -> tuple[str, str | None]:
    """`MODEL[:MODAL]` after `sevennet:` (empty: the default model) -> (model or checkpoint path, modal).
    A multi-fidelity model without a modal takes its first (PBE), and the run's name says so."""
    model, _, modal = (rest or DEFAULT_SEVENNET).partition(":")
    known = SEVENNET_MODELS.get(model.lower())
    if known is None:
        if not Path(model).expanduser().is_file():
            names = ", ".join(SEVENNET_MODELS)
            raise AmorphError(f"unknown SevenNet model '{model}' (shipped: {names}; or the path of a checkpoint file)")
        return str(Path(model).expanduser().resolve()), modal.lower() or None
    model = model.lower()
    if known.modals:
        modal = modal.lower() or known.modals[0]
        if modal not in known.modals:
            raise AmorphError(f"SevenNet model {model} has the modals {', '.join(known.modals)}, not '{modal}'")
        return model, modal
    if modal:
        raise AmorphError(f"SevenNet model {model} has one fidelity; drop ':{modal}'")
    return model, None


def sevennet_checkpoint(model: str) -> Path:
    """The local checkpoint file of a shipped model (or the path given), without downloading."""
    if model not in SEVENNET_MODELS:
        return Path(model)
    from sevenn import _const

    shipped = Path(getattr(_const, SEVENNET_MODELS[model].constant))
    cached = Path(str(shipped).replace(_const._prefix, os.path.expanduser("~/.cache/sevennet")))
    for path in (shipped, cached):
        if path.is_file():
            return path
    raise AmorphError(f"SevenNet checkpoint {shipped.name} is not installed (sevenn would download it; amorph does not)")


def load_sevennet(rest: str, device: str) -> LoadedPotential:
    """`--potential sevennet[:MODEL[:MODAL]]`: a SevenNet checkpoint through sevenn's ASE calculator."""
    model, modal = parse_sevennet(rest)
    spec = "sevennet" + (f":{rest}" if rest else "")
    sevenn = optional_package("sevenn", spec)
    from sevenn.calculator import SevenNetCalculator

    checkpoint = sevennet_checkpoint(model)
    with quiet():
        try:
            probe = SevenNetCalculator(str(checkpoint), device=device, modal=modal.upper() if modal else None)
        except (ValueError, RuntimeError, KeyError) as err:
            raise AmorphError(f"could not load SevenNet model '{model}': {err}") from None
    network: TorchModel = probe.model
    elements = frozenset(_symbol(z) for z in probe.type_map)
    name = "sevennet:" + (model if model in SEVENNET_MODELS else str(checkpoint)) + (f":{modal}" if modal else "")
    known = SEVENNET_MODELS.get(model)

    def make() -> Calculator:
        with quiet():
            return SevenNetCalculator(str(checkpoint), device=device, modal=modal.upper() if modal else None)

    return LoadedPotential(
        name=name,
        description=f"SevenNet {model}" + (f", {modal} head" if modal else "") + f" (Park et al. 2024; sevenn {sevenn.__version__})",
        elements=elements,
        device=device,
        checksum=weights_checksum(network),
        make_calculator=make,
        version=f"sevenn {sevenn.__version__}",
        training=known.training[modal or ""] if known else "unknown (a checkpoint file)",
        model=network,
        modal=modal.upper() if modal else None,
    )


def load_diep(rest: str, device: str) -> LoadedPotential:
    """`--potential diep[:DIR]`: the DIEP model diep ships (or an exported model folder)."""
    spec = "diep" + (f":{rest}" if rest else "")
    optional_package("diep", spec)
    from diep.pretrained import DEFAULT_MODEL_DIR, DIEPCalculator, model_info
    from diep.pretrained import load_potential as load_diep_potential

    folder = Path(rest).expanduser() if rest else Path(DEFAULT_MODEL_DIR)
    missing = [f for f in ("model.json", "model.pt", "state.pt") if not (folder / f).is_file()]
    if missing:  # diep's own loader would try a download here
        raise AmorphError(f"DIEP model folder '{folder}' is missing {', '.join(missing)}")
    with quiet():
        try:
            potential = load_diep_potential(folder, device=device)
        except Exception as err:  # diep raises what torch or its json loader raise
            raise AmorphError(f"could not load DIEP model '{folder}': {err}") from None
    info = model_info(folder)
    element_types = getattr(potential.model, "element_types", ())
    version = metadata.version("diep")

    def make() -> Calculator:
        with quiet():
            return DIEPCalculator(potential=potential, stress_unit="eV/A3")

    label = info.get("name", folder.name)
    return LoadedPotential(
        name="diep" + (f":{folder.resolve()}" if rest else ""),
        description=f"DIEP {label} (diep {version})",
        elements=frozenset(element_types),
        device=device,
        checksum=weights_checksum(potential),
        make_calculator=make,
        model=potential,
        version=f"diep {version}",
        training=f"{info.get('functional', 'unknown')} (MatPES)" if info else "unknown (a model folder)",
    )


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]
