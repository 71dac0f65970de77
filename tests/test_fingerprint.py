"""pipeline.fingerprint: a job's code version follows exactly the project modules it runs."""
from pathlib import Path

from conftest import REPO
from pipeline.fingerprint import code_version, source_files


def project(root: Path) -> None:
    files = {
        "pkg/__init__.py": "from .base import VERSION\n",
        "pkg/base.py": "VERSION = 1\n",
        "pkg/job.py": "from . import helper\nfrom pkg.base import VERSION\n\ndef run():\n    from other.lazy import f\n",
        "pkg/helper.py": "import numpy\n",
        "pkg/unused.py": "X = 1\n",
        "other/__init__.py": "",
        "other/lazy.py": "def f():\n    return 1\n",
        "other/unrelated.py": "Y = 2\n",
        "scripts/job.py": "from pkg.job import run\nimport pandas\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_script_runs_the_closure_of_its_project_imports(tmp_path):
    project(tmp_path)
    found = {p.relative_to(tmp_path).as_posix() for p in source_files("scripts/job.py", root=tmp_path)}
    assert found == {"scripts/job.py", "pkg/__init__.py", "pkg/base.py", "pkg/job.py", "pkg/helper.py",
                     "other/__init__.py", "other/lazy.py"}  # a lazy import counts; numpy and pandas are not ours
    assert {p.name for p in source_files("other", root=tmp_path)} == {"__init__.py", "lazy.py", "unrelated.py"}


def test_the_version_moves_with_the_code_a_job_runs_and_only_with_it(tmp_path):
    project(tmp_path)
    before = code_version("scripts/job.py", root=tmp_path)
    assert code_version("scripts/job.py", root=tmp_path) == before
    (tmp_path / "other/unrelated.py").write_text("Y = 3  # never imported by the job\n")
    (tmp_path / "pkg/unused.py").write_text("X = 2\n")
    assert code_version("scripts/job.py", root=tmp_path) == before
    (tmp_path / "other/lazy.py").write_text("def f():\n    return 2\n")
    after = code_version("scripts/job.py", root=tmp_path)
    assert after != before and len(after) == 12


def test_scoring_code_is_in_the_score_job_and_not_in_the_plots():
    score = {p.relative_to(REPO).as_posix() for p in source_files("workflow/scripts/score.py", root=REPO)}
    assert "creativity/scoring.py" in score and not any(p.startswith("analysis/") for p in score)
    plot = {p.relative_to(REPO).as_posix() for p in source_files("workflow/scripts/plot.py", "analysis.plots", root=REPO)}
    assert "analysis/plots.py" in plot and "creativity/scoring.py" not in plot and "models/train.py" not in plot
