"""Bad input: one line on stderr, exit code 2, no traceback, nothing written, earlier results intact."""

import os

import pytest

FAST = ["--potential", "emt", "--preset", "smoke"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["predict", "Xx2", *FAST], "not a chemical formula"),
        (["predict", "", *FAST], "not a chemical formula"),
        (["predict", "cu", *FAST], "not a chemical formula"),
        (["predict", "Cu0.5Au", *FAST], "fractional amounts"),
        (["predict", "Cu-2Au", *FAST], "not a chemical formula"),
        (["predict", "Cu2+", *FAST], "not a chemical formula"),
        (["predict", "Cu(OH)2", *FAST], "does not cover element(s) H, O"),
        (["predict", "CuSO4·5H2O", *FAST], "CuH10SO9 (21 atoms each)"),  # read as one formula
        (["predict", "Cu₂Au", *FAST, "--atoms", "6000"], "--atoms 6000"),
        (["predict", "Cü", *FAST], "not a chemical formula"),
        (["predict", "Cu" * 5000, *FAST, "--atoms", "6000"], "--atoms 6000"),
        (["predict", "Cu" * 5000 + "Xx", *FAST], "...'"),
        (["predict", "Cu", *FAST, "--md-steps", "0"], "--md-steps must be a positive number"),
        (["predict", "Cu", *FAST, "--relax-steps", "0"], "--relax-steps must be a positive number"),
        (["predict", "Cu", *FAST, "--t-high", "0"], "--t-high must be a positive number"),
        (["predict", "Cu", *FAST, "--t-low", "-5"], "--t-low must be a positive number"),
        (["predict", "Cu", *FAST, "--atoms", "6000"], "--atoms 6000"),
        (["predict", "Cu", *FAST, "--volume-factor", "0.3"], "too small for its 32 atoms"),
        (["predict", "Cu", *FAST, "--volume-factor", "nan"], "--volume-factor must be a positive number"),
        (["predict", "Cu", *FAST, "--db", "/nonexistent/refs"], "no such folder or file"),
        (["predict", "Cu", *FAST, "--db", __file__], "expected a folder of structure files or an ASE database"),
        (["predict", "Cu", *FAST, "--db", os.path.dirname(os.path.dirname(__file__)) + "/docs"], "no CIF, POSCAR or extxyz files"),
        (["predict", "TiO2", *FAST], "does not cover element(s) O, Ti"),
        (["predict", "Cu", *FAST, "--md-steps", "-5"], "--md-steps"),
        (["predict", "Cu", *FAST, "--t-low", "2500"], "--t-low"),
        (["predict", "Cu", *FAST, "--n-min", "9", "--n-max", "4"], "--n-min"),
        (["predict", "Cu", *FAST, "--d-frac", "1.5"], "--d-frac"),
        (["predict", "Cu", *FAST, "--d-frac", "0"], "--d-frac"),
        (["predict", "Cu", *FAST, "--timestep", "-1"], "--timestep"),
        (["predict", "Cu", *FAST, "--fmax", "0"], "--fmax"),
        (["predict", "Cu", *FAST, "--friction", "0"], "--friction must be a positive number"),
        (["predict", "Cu", *FAST, "--thermostat", "berendsen"], "thermostat"),
        (["predict", "Cu", *FAST, "--atoms", "abc"], "atoms"),
        (["predict", "Cu", "--potential", "matgl:/no/such/model", "--preset", "smoke"], "missing model.json"),
        (["predict", "Cu", "--potential", "nonsense", "--preset", "smoke"], "unknown potential"),
        (["predict", "Cu", "--potential", "emt+d4", "--preset", "smoke"], "unknown potential 'emt+d4'"),
        (["predict", "Cu", "--potential", "matgl:/no/such/model+d3", "--preset", "smoke"], "missing model.json"),
        (["predict", "Cu", "--potential", "emt", "--preset", "huge"], "unknown preset"),
        (["predict", "Cu", *FAST, "--resume"], "--resume"),
        (["predict", "Cu0Au", *FAST], "gives Cu an amount of zero"),
        (["predict", "AuCu0.0", *FAST], "gives Cu an amount of zero"),
        (["compare", "Xx2", "--potential", "emt"], "not a chemical formula"),
        (["compare", "/nonexistent/run", "--potential", "emt"], "neither a run folder (no such directory) nor a chemical formula"),
        (["compare", "Cu", "--potential", "emt", "--fmax", "-1"], "--fmax"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, args, needle):
    out = tmp_path / "run"
    code, stdout, stderr = cli(*args, "--out", str(out))
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amorph: error:"), stderr
    assert needle in lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()


def test_unwritable_out(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code, _, stderr = cli("predict", "Cu", *FAST, "--out", str(locked / "run"))
        assert code == 2 and "not writable" in stderr and len(stderr.strip().splitlines()) == 1
    finally:
        os.chmod(locked, 0o700)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_out_where_the_file_system_refuses_even_root(cli):
    """/proc passes access(W_OK) for root, yet no folder can be made there: refused before any MD."""
    code, _, stderr = cli("predict", "Cu", *FAST, "--out", "/proc/amorph-test/run")
    assert code == 2 and "--out /proc/amorph-test/run is not writable" in stderr and len(stderr.strip().splitlines()) == 1


def test_out_that_is_a_file(cli, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, _, stderr = cli("predict", "Cu", *FAST, "--out", str(target))
    assert code == 2 and "not a directory" in stderr
    assert target.read_text() == "keep me"


def test_existing_results_are_never_overwritten(cli, tmp_path):
    out = tmp_path / "earlier"
    out.mkdir()
    (out / "report.json").write_text('{"earlier": true}')
    code, _, stderr = cli("predict", "Cu", *FAST, "--out", str(out))
    assert code == 2 and "already holds files" in stderr
    assert (out / "report.json").read_text() == '{"earlier": true}'
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


@pytest.mark.parametrize(
    "args",
    [
        ["--resume", "--md-steps", "0"],
        ["--resume", "--seed", "5"],
        ["--resume", "--volume-factor", "0.1"],
        ["--db", "/nonexistent/refs"],
        ["--atoms", "-1"],
        [],  # no --resume: the folder already holds a run
    ],
)
def test_bad_input_leaves_an_earlier_run_untouched(cli, tmp_path, cu_smoke_run, args):
    import shutil

    run = tmp_path / "earlier"
    shutil.copytree(cu_smoke_run[0], run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code, _, stderr = cli("predict", "Cu", *FAST, "--seed", "0", "--out", str(run), *args)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
