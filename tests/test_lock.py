"""One writer per run folder: a live holder is refused by name, a dead one's lock is taken over."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

from amorph.results.lock import LOCK


def _lock(folder, pid):
    (folder / LOCK).write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "since": "2026-12-01T00:00:00Z"}))


def test_a_finished_run_leaves_no_lock(cu_smoke_run):
    out, _ = cu_smoke_run
    assert not (out / LOCK).exists()


def test_a_folder_in_use_is_refused_and_a_dead_holder_taken_over(cu_smoke_run, cli, tmp_path):
    src, _ = cu_smoke_run
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    (out / "report.json").unlink()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(out, alive.pid)
        for args in (["resume", str(out)], ["predict", "Cu", "--potential", "emt", "--preset", "smoke", "--out", str(out), "--restart"]):
            code, _, stderr = cli(*args)
            assert code == 2 and stderr.count("\n") == 1, stderr
            assert f"is in use by process {alive.pid}" in stderr
        assert not (out / "report.json").exists() and (out / "config.json").is_file()  # nothing touched
    finally:
        alive.kill()
        alive.wait()
    _lock(out, alive.pid)  # now a dead process's lock, as SIGKILL leaves it
    code, _, stderr = cli("resume", str(out))
    assert code == 0, stderr
    assert f"took over the lock of process {alive.pid}" in stderr
    assert (out / "report.json").is_file() and not (out / LOCK).exists()
