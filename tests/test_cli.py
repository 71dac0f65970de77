"""The command-line entry points explain themselves, and `make` switches torch builds."""
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("module", ["benchmarks", "benchmarks.stage_times", "pipeline.config"])
def test_help_explains_and_runs_nothing(module, tmp_path):
    """--help prints usage and exits 0; `python -m benchmarks --help` starts no benchmark (it
    would write results/benchmarks/summary.json here) and does not even load torch."""
    probe = ("import runpy, sys\n"
             f"sys.argv = [{module!r}, '--help']\n"
             "try:\n"
             f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
             "except SystemExit as done:\n"
             "    print('exit', done.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: python -m {module} ")
    assert result.stdout.splitlines()[-1] == "exit 0 False"
    assert not (tmp_path / "results").exists()


def make_dry_run(*args) -> str:
    return subprocess.run(["make", "-n", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def test_make_help_lists_the_targets_and_the_cuda_override():
    out = subprocess.run(["make", "-C", str(REPO), "help"], capture_output=True, text=True, check=True).stdout
    for target in ("install", "run", "test", "bench", "clean"):
        assert f"make {target} " in out
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cu128" in out


def test_another_torch_build_is_installed_on_an_existing_venv(tmp_path):
    """The torch stamp is named after TORCH and TORCH_INDEX: with the stamp of one build present,
    asking for another reinstalls torch (forced: pip takes 2.13.0+cpu for torch==2.13.0)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    cpu = ("TORCH=torch==2.13.0+cpu", "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    cuda = ("TORCH=torch==2.13.0", "TORCH_INDEX=https://download.pytorch.org/whl/cu128")
    first = make_dry_run("install", f"VENV={venv}", *cpu)
    assert '--force-reinstall "torch==2.13.0+cpu"' in first
    stamp = first.split("> ")[-1].split()[0]  # the stamp the recipe would write
    open(stamp, "w").write("torch==2.13.0+cpu https://download.pytorch.org/whl/cpu\n")
    (venv / ".installed").touch()  # newer than the stamp: this build is installed
    assert "pip install" not in make_dry_run("install", f"VENV={venv}", *cpu)
    again = make_dry_run("install", f"VENV={venv}", *cuda)
    assert '--force-reinstall "torch==2.13.0" --extra-index-url https://download.pytorch.org/whl/cu128' in again
