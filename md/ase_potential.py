"""`--potential ase:MODULE:FACTORY`: any ASE calculator the user has installed (MACE with a local model
file, ORB, MatterSim, a calculator of their own), run one structure at a time.

FACTORY is called with no arguments, or with `device=` when it takes one, and must return an ASE
Calculator; the same factory is called again for each worker that needs its own calculator. An ASE
calculator does not say which elements it was trained on, so amorph takes Z 1-94 and relies on the
potential check on a reference crystal (amorph.pipeline), which every run does unless it is skipped:
a calculator that cannot describe the formula's ground state fails there, before the melt-quench.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module

from ase.calculators.calculator import Calculator

from amorph.errors import AmorphError
from amorph.md.potentials import LoadedPotential, quiet, weights_checksum


def parse_ase_spec(rest: str) -> tuple[str, str]:
    """`MODULE:FACTORY` -> (module, factory); AmorphError on anything else, without importing."""
    module, _, factory = rest.partition(":")
    if not module or not factory or ":" in factory or not all(part.isidentifier() for part in module.split(".")) or not factory.isidentifier():
        raise AmorphError(f"--potential ase:{rest}: expected ase:MODULE:FACTORY, e.g. ase:mace.calculators:mace_mp")
    return module, factory


def load_ase(rest: str, device: str) -> LoadedPotential:
    """Import MODULE, build one calculator with FACTORY to check it, and keep FACTORY for the run."""
    module_name, factory_name = parse_ase_spec(rest)
    try:
        module = import_module(module_name)
    except ImportError as err:
        raise AmorphError(f"--potential ase:{rest}: cannot import '{module_name}' ({err})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise AmorphError(f"--potential ase:{rest}: '{module_name}' has no callable '{factory_name}'")
    make = _with_device(factory, device)
    with quiet():
        try:
            calculator = make()
        except Exception as err:  # whatever the user's factory raises: it could not build a calculator
            raise AmorphError(f"--potential ase:{rest}: {factory_name}() failed ({type(err).__name__}: {err})") from None
    if not isinstance(calculator, Calculator) and not hasattr(calculator, "get_potential_energy"):
        raise AmorphError(f"--potential ase:{rest}: {factory_name}() returned {type(calculator).__name__}, not an ASE calculator")
    from pymatgen.core import Element

    network = getattr(calculator, "model", None)
    checksum = weights_checksum(network) if network is not None and hasattr(network, "state_dict") else (
        "unknown (no torch model on the calculator)")
    version = getattr(module, "__version__", None) or _distribution_version(module_name)
    return LoadedPotential(
        name=f"ase:{module_name}:{factory_name}",
        description=f"ASE calculator {module_name}.{factory_name}() ({type(calculator).__name__}"
        + (f", {version})" if version else ")"),
        elements=frozenset(el.symbol for el in Element if el.Z <= 94),
        device=device,
        checksum=checksum,
        make_calculator=make,
        version=version or "unknown",
        training="unknown (an ASE calculator does not say)",
    )


def _with_device(factory: Callable[..., Calculator], device: str) -> Callable[[], Calculator]:
    """The factory with device= passed when it takes that argument."""
    try:
        takes_device = "device" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        takes_device = False
    return (lambda: factory(device=device)) if takes_device else factory


def _distribution_version(module_name: str) -> str:
    from importlib import metadata

    top = module_name.split(".", 1)[0]
    for dist in metadata.packages_distributions().get(top, []):
        return f"{dist} {metadata.version(dist)}"
    return ""
