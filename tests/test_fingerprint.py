"""pipeline.fingerprint: a job's code version follows exactly the project code it runs."""
from pathlib import Path

from conftest import REPO
from pipeline.fingerprint import SAMPLE_SCORER_CODE, code_version, traced_code


def project(root: Path) -> None:
    files = {
        "pkg/__init__.py": '"""A package."""\nfrom .base import VERSION\n',
        "pkg/base.py": "VERSION = 1\n\n\ndef unrelated():\n    return 0\n",
        "pkg/job.py": ("from . import helper\nfrom pkg.base import VERSION\n\n\n"
                       "def run():\n    from other.lazy import f\n    return f() + helper.twice(VERSION)\n\n\n"
                       "def sample():\n    from other.heavy import g\n    return g()\n"),
        "pkg/helper.py": "import numpy\n\n\ndef twice(x):\n    return 2 * x\n",
        "other/__init__.py": "",
        "other/lazy.py": "def f():\n    return 1\n",
        "other/heavy.py": "def g():\n    return 3\n",
        "scripts/job.py": "from pkg.job import run\nimport pandas\n\nprint(run())\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_script_runs_what_it_names_and_what_that_names(tmp_path):
    project(tmp_path)
    traced = set(traced_code("scripts/job.py", root=tmp_path))
    assert {"script:scripts/job.py", "pkg.job:run", "other.lazy:f", "pkg.helper:twice", "pkg.base:VERSION"} <= traced
    assert not {"pkg.job:sample", "other.heavy:g", "pkg.base:unrelated"} & traced  # in imported modules, never run
    assert {"pkg:<import>", "pkg.job:<import>", "other:<import>"} <= traced  # modules whose import runs


def test_the_version_moves_with_the_code_a_job_runs_and_only_with_it(tmp_path):
    project(tmp_path)
    before = code_version("scripts/job.py", root=tmp_path)
    assert code_version("scripts/job.py", root=tmp_path) == before and len(before) == 12
    (tmp_path / "other/heavy.py").write_text("def g():\n    return 4\n")  # the sampler, not this job's
    (tmp_path / "pkg/base.py").write_text("VERSION = 1\n\n\ndef unrelated():\n    return 5\n")
    (tmp_path / "pkg/helper.py").write_text("import numpy\n\n\ndef twice(x):  # a comment\n    return 2 * x\n")
    assert code_version("scripts/job.py", root=tmp_path) == before
    (tmp_path / "other/lazy.py").write_text("def f():\n    return 2\n")  # reached through a lazy import
    assert code_version("scripts/job.py", root=tmp_path) != before
    after = code_version("scripts/job.py", root=tmp_path)
    (tmp_path / "pkg/base.py").write_text("VERSION = 2\n\n\ndef unrelated():\n    return 5\n")
    assert code_version("scripts/job.py", root=tmp_path) != after


def test_scoring_is_in_the_score_job_and_not_in_training_or_plots():
    def modules(*sources):
        return {key.split(":")[0] for key in traced_code(*sources, root=REPO)}

    assert "creativity.scoring" in modules("workflow/scripts/score.py")
    assert "creativity.scoring" not in {key.split(":")[0] for key in traced_code("workflow/scripts/train.py", root=REPO)
                                        if not key.endswith(":<import>")}
    plot = modules("workflow/scripts/plot.py", "analysis.plots")
    assert "analysis.plots" in plot and "models.train" not in plot


def test_what_a_job_provably_never_calls_and_annotations_are_not_its_code(tmp_path):
    project(tmp_path)
    (tmp_path / "pkg/typed.py").write_text(
        "from __future__ import annotations\nfrom other.heavy import g\nfrom other.lazy import f\n\n\n"
        "def run(x: g) -> g:\n    return f()\n")
    (tmp_path / "scripts/typed.py").write_text("from pkg.typed import run\n\nrun(1)\n")
    traced = set(traced_code("scripts/typed.py", root=tmp_path))
    assert "other.lazy:f" in traced and "other.heavy:g" not in traced  # g only annotates
    assert "pkg.helper:twice" in traced_code("scripts/job.py", root=tmp_path)
    assert "pkg.helper:twice" not in traced_code("scripts/job.py", root=tmp_path, not_run=("pkg.helper:twice",))
    before = code_version("scripts/job.py", root=tmp_path, not_run=("pkg.helper:twice",))
    (tmp_path / "pkg/helper.py").write_text("import numpy\n\n\ndef twice(x):\n    return 3 * x\n")
    assert code_version("scripts/job.py", root=tmp_path, not_run=("pkg.helper:twice",)) == before


def test_an_ebt_sample_job_runs_no_scorer_but_the_transformers_does():
    def modules(**kwargs):
        return {key.split(":")[0] for key in traced_code("workflow/scripts/sample.py", root=REPO, **kwargs)
                if not key.endswith(":<import>")}

    tpp, ebt = modules(), modules(not_run=SAMPLE_SCORER_CODE)
    assert "creativity.scoring" in tpp and "creativity.scoring" not in ebt and "models.decoding" in ebt
