"""Shared fixtures: a tiny matgl model, and one Cu/EMT smoke run that many tests read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the real console entry point in-process; return (exit code, stdout, stderr)."""
    from amorph.cli.main import main

    monkeypatch.setattr(sys, "argv", ["amorph", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load_benchmark(name: str):
    """A script of benchmarks/ as a module, loaded as it runs (from its folder, so `import accuracy`
    works) and registered under its name (dataclasses look their module up)."""
    import importlib.util

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(folder))
    return module


@pytest.fixture
def benchmark_script():
    """load_benchmark, for tests of the scripts in benchmarks/."""
    return load_benchmark


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    return lambda *args: run_cli(list(args), monkeypatch, capsys)


@pytest.fixture(scope="session")
def tiny_matgl_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised TensorNet PES for Cu, Si, Ti, O, saved the way matgl saves models."""
    import torch
    from matgl.apps.pes import Potential
    from matgl.models import TensorNet

    torch.manual_seed(0)
    model = TensorNet(element_types=("Cu", "O", "Si", "Ti"), units=8, nblocks=1, num_rbf=8, cutoff=4.0, is_intensive=False)
    path = tmp_path_factory.mktemp("models") / "tiny-tensornet"
    Potential(model=model).save(path)
    return path


@pytest.fixture(scope="session")
def cu_smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`amorph predict Cu --potential emt --preset smoke --seed 0 --out X`, once per session, via the CLI."""
    out = tmp_path_factory.mktemp("runs") / "cu-smoke"
    with pytest.MonkeyPatch.context() as mp:
        from amorph.cli.main import main

        mp.setattr(sys, "argv", ["amorph", "predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--out", str(out), "--quiet"])
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), f"smoke run exited with {exc.code}"
    return out, ""
