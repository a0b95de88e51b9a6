"""The distribution installs one top-level package, `amorph`, with every polymorph data file.

Why: the stage folders (cli, md, motifs, matching, results) sit at the repository root, and installed
under their own names they would collide with unrelated PyPI projects of the same names (md, matching,
results); pip overwrites such files without a word. pyproject.toml maps them into `amorph.*`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "matching" / "data" / "polymorphs"
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "amorph-runs")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel built from a copy of the source tree (so the checkout gets no build/ folder), and
    the build's output."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wheel,) = (work / "dist").glob("amorph-*.whl")
    return wheel, done.stdout + done.stderr


def test_wheel_has_one_top_level_package(built: tuple[Path, str]) -> None:
    wheel, _ = built
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        declared = zf.read(info).decode().split()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert top_level == {"amorph"}
    assert declared == ["amorph"]
    for sub in ("cli", "md", "motifs", "matching", "results"):
        assert f"amorph/{sub}/__init__.py" in names
    assert "amorph = amorph.cli.main:main" in entry_points


def test_wheel_holds_every_polymorph_file(built: tuple[Path, str]) -> None:
    wheel, output = built
    with zipfile.ZipFile(wheel) as zf:
        shipped = {Path(n).name for n in zf.namelist() if n.startswith("amorph/matching/data/polymorphs/")}
    expected = {p.name for p in DATA.glob("*.toml")}
    assert len(expected) >= 60
    assert shipped == expected
    assert "would be ignored" not in output  # setuptools' warning for data folders it was not told about


def test_installed_wheel_runs_outside_the_checkout(built: tuple[Path, str], tmp_path: Path) -> None:
    """A non-editable install (the wheel unpacked into a folder first on the path) imports and reads
    its data from there, not from the checkout."""
    wheel, _ = built
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import sys, amorph.cli.main as m, amorph.matching.database as d;"
        "print(m.__file__); print(len(d.known_formulas()));"
        "sys.argv = ['amorph', 'db', 'list', 'TiO2']; m.main()"
    )
    env = os.environ | {"PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    module_file, formulas, *table = done.stdout.splitlines()
    assert Path(module_file).is_relative_to(target)
    assert int(formulas) == len(list(DATA.glob("*.toml")))
    assert "anatase" in "\n".join(table)
