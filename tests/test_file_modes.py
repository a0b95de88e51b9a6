"""Every file a run writes is as readable as the user's umask allows (a collaborator on a shared cluster
must be able to open the results), not private to the user as a temporary file is made."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    out = tmp_path / "run"
    code = ("import sys; from amorph.cli.main import main; sys.argv = ['amorph', 'predict', 'Cu', '--potential', 'emt', '--preset', "
            f"'smoke', '--atoms', '8', '--md-steps', '5', '--max-subcells', '3', '--relax-steps', '20', '--out', {str(out)!r}, '--quiet']; main()")
    done = subprocess.run([sys.executable, "-c", code], preexec_fn=lambda: os.umask(umask), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 15 and any(p.suffix == ".cif" for p in files) and any(p.suffix == ".png" for p in files)
    wrong = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) != mode}
    assert not wrong, f"expected {oct(mode)}: {wrong}"
