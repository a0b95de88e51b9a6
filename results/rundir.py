"""The run directory: every file name a run writes, and atomic writes into it.

Each stage writes its outputs here and the next stage reads them back, so a stopped run can be
resumed stage by stage (`amorph predict --resume --out DIR`). Every write goes to a temporary
name in the same folder first and is then renamed, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amorph.errors import AmorphError
from amorph.results.lock import LOCK


def current_umask() -> int:
    """The process's umask, read from /proc where there is one (reading it with os.umask means setting
    it, for a moment, for every thread of the process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


if TYPE_CHECKING:  # pandas and ase.io are imported where used: the CLI checks --out before loading them
    import pandas as pd
    from ase import Atoms

CONFIG = "config.json"
KNOWN_POLYMORPHS = "known_polymorphs.json"
SUBCELL_RANGE = "subcell_range.json"  # the subcell size limit the known polymorphs set, and those the cell has no room for
START = "start.extxyz"
MELT_QUENCH_LOG = "melt_quench.csv"
MELT_QUENCH_FAULTS = "melt_quench_faults.json"  # faults met and recovered from, when any
MELT_QUENCH_SUMMARY = "melt_quench.json"  # per replica: the packed cell's relaxation, each stage's temperatures
AMORPHOUS_CIF = "amorphous.cif"
AMORPHOUS_XYZ = "amorphous.extxyz"
SUBCELLS_INITIAL = "subcells_initial.extxyz"
SUBCELL_CENSUS = "subcell_census.json"  # how many boxes each filter kept, and the reserve drawn
SUBCELLS_RELAXED = "subcells_relaxed.extxyz"
CHECKPOINT = "subcells_relaxed.partial.extxyz"  # stage 4's finished relaxations so far (results.checkpoint)
SUBCELLS_CSV = "subcells.csv"
POLYMORPHS_CSV = "polymorphs.csv"
REPORT = "report.json"
SIMILARITY = "similarity.json"  # the amorphous solid against each known polymorph (amorph.closeness)
SIMILARITY_CSV = "similarity.csv"
AMORPHOUS_RELAXED = "amorphous_relaxed.extxyz"  # each replica's inherent structure
POLYMORPHS_RELAXED = "polymorphs_relaxed.extxyz"  # each known polymorph relaxed under the run's potential
SAMPLING = "sampling.json"
PRODUCTS = "products"
STACKING_VARIANT_SUFFIX = "-stacking-variant"  # products/<name>-stacking-variant.cif: a layered polymorph's other stacking
REPORT_HTML = "report.html"  # the run on one self-contained page (results.html)
FIGURES = "figures"  # PNGs (results.figures)
COMPARE_CSV = "compare.csv"
COMPARE_JSON = "compare.json"
STAGE_RECORDS = "stages.json"  # what each stage ran with, whether it finished, its seconds (amorph.stages)



def product_cif(products: Path, name: str) -> Path:
    """A product's CIF in products/: the one matching the polymorph outright, else its stacking variant's."""
    exact = products / f"{name}.cif"
    variant = products / f"{name}{STACKING_VARIANT_SUFFIX}.cif"
    return exact if exact.exists() or not variant.exists() else variant


class RunDir:
    """A run's output folder."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @staticmethod
    def check_writable(path: Path, resume: bool) -> None:
        """Refuse, before anything is written, a folder we cannot or must not write into."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise AmorphError(f"--out {path} exists and is not a directory")
        if path.exists() and any(p.name != LOCK for p in path.iterdir()) and not resume:  # a lock alone: checked by its holder
            raise AmorphError(f"{path} already holds files; choose a new output folder, continue the run there (--resume; "
                              f"resume=True in Python) or start it over (--restart; restart=True)")
        if resume and not (path / CONFIG).is_file():
            raise AmorphError(f"{path} holds no {CONFIG} of an earlier run, so there is nothing to resume there "
                              "(amorph resume and --resume continue a folder that amorph predict wrote)")
        RunDir.check_can_write(path)

    @staticmethod
    def check_can_write(path: Path) -> None:
        """Refuse a folder that cannot be made or written into (the nearest existing parent decides)."""
        parent = path
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AmorphError(f"--out {path} is not writable")
        # access() says yes where the file system still refuses (/proc, /sys, a read-only mount, root
        # anywhere): make and remove a probe folder where the run's folder would go
        try:
            probe = tempfile.mkdtemp(prefix=".amorph-probe-", dir=parent)
        except OSError as err:
            raise AmorphError(f"--out {path} is not writable ({err.strerror})") from None
        os.rmdir(probe)

    @staticmethod
    def check_restartable(path: Path) -> None:
        """--restart empties a folder only when it is an amorph run (its config.json), or empty."""
        path = Path(path)
        if path.is_dir() and any(p.name != LOCK for p in path.iterdir()) and not (path / CONFIG).is_file():
            raise AmorphError(f"--restart: {path} holds no {CONFIG} of an amorph run; not removing what is in it")
        RunDir.check_writable(path, resume=path.is_dir() and (path / CONFIG).is_file())

    def clear(self) -> None:
        """Remove an earlier run from this folder (--restart; check_restartable has said it is one)."""
        if self.path.is_dir():
            shutil.rmtree(self.path)

    def create(self) -> RunDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True)  # products/ comes with its first CIF
        except OSError as err:
            raise AmorphError(f"cannot create --out {self.path}: {err.strerror}") from None
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def _atomic(self, name: str, writer: Callable[[Path], object]) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
        os.close(fd)
        try:
            writer(Path(tmp))
            # mkstemp makes the file private (0600); a result is as readable as the user's umask lets any
            # new file be (0644 under 022), so that collaborators on a shared cluster can open it
            os.chmod(tmp, 0o666 & ~current_umask())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self._atomic(name, lambda p: p.write_text(text, encoding="utf-8"))

    def write_json(self, name: str, data: Any) -> Path:
        return self._atomic(name, lambda p: p.write_text(json.dumps(data, indent=2, default=_json_default) + "\n"))

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        return self._atomic(name, lambda p: frame.to_csv(p, index=False))

    def read_csv(self, name: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_csv(self.path / name)

    def read_rows(self, name: str) -> list[dict[str, str]]:
        """A CSV file's rows as text cells (typed records parse them: results.subcells)."""
        with open(self.path / name, newline="") as handle:
            return list(csv.DictReader(handle))

    def write_atoms(self, name: str, atoms: Atoms | list[Atoms], fmt: str) -> Path:
        from ase.io import write

        return self._atomic(name, lambda p: write(p, atoms, format=fmt))

    def read_atoms(self, name: str) -> list[Atoms]:
        from ase.io import read

        return read(self.path / name, index=":", format="extxyz")  # type: ignore[return-value]


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
