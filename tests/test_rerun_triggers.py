"""Rerun triggers are exact: after a finished tiny run, a dry run lists exactly the jobs whose
params or code an edit changes. Counts on the tiny grid: 3 architectures x 2 budgets x 1 shape
x 1 seed, so 6 train and 6 sample batches (2 of them the Transformer++'s), 6 score jobs, and one
tune_run per architecture."""
import re
import shutil

import pytest
from conftest import REPO, copy_run, run_snakemake, write_config

SOURCES = ("Snakefile", "config.yaml", "workflow", "creativity", "models", "pipeline", "analysis")


def planned_jobs(repo, workdir) -> dict[str, int]:
    """Rule -> job count of a dry run of `repo`'s Snakefile (its own packages) in `workdir`."""
    result = run_snakemake(workdir, "--cores", "1", "-n", "--quiet", "rules", timeout=300, repo=repo)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    if "Nothing to be done" in out:
        return {}
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M) if rule != "total"}


@pytest.fixture(scope="module")
def finished(tiny_run, tmp_path_factory):
    """A copy of the finished tiny run and of the project's code, so both can be edited."""
    root = tmp_path_factory.mktemp("triggers")
    repo, workdir = root / "repo", root / "work"
    repo.mkdir()
    workdir.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, repo / name)
    copy_run(tiny_run, workdir)
    return repo, workdir


def edit_config(workdir, **changes):
    write_config(workdir, REPO / "workflow/presets/tiny.yaml", **changes)


TRAINS = {"tune_run", "tune_select", "train", "tuning_table"}


def test_a_copy_of_the_code_and_an_unread_edit_rerun_nothing(finished):
    repo, workdir = finished
    assert planned_jobs(repo, workdir) == {}
    with open(workdir / "config.yaml", "a") as f:
        f.write("# a comment: nothing reads it\n")
    assert planned_jobs(repo, workdir) == {}


def test_a_decoding_edit_resamples_only_the_architectures_it_applies_to(finished):
    repo, workdir = finished
    try:
        edit_config(workdir, **{"decoding.ebt.steps_multipliers": [1, 3]})
        jobs = planned_jobs(repo, workdir)
        assert jobs["sample"] == 4 and jobs["score"] == 4, jobs  # the EBTs' batches only
        assert not TRAINS & set(jobs), jobs
        edit_config(workdir, **{"decoding.tpp.temperatures": [0.5]})
        jobs = planned_jobs(repo, workdir)
        assert jobs["sample"] == 2 and jobs["score"] == 2 and not TRAINS & set(jobs), jobs
    finally:
        edit_config(workdir)
    assert planned_jobs(repo, workdir) == {}


def test_an_ebt_key_edit_retrains_only_the_ebts(finished):
    repo, workdir = finished
    try:
        edit_config(workdir, **{"ebt.langevin_sigma": 2.0})
        jobs = planned_jobs(repo, workdir)
        assert jobs["tune_run"] == 2 and jobs["train"] == 4 and jobs["sample"] == 4, jobs
    finally:
        edit_config(workdir)


def test_a_scoring_edit_rescores_and_resamples_only_what_scores(finished):
    """The Transformer++'s reward tilt ranks by the scorer, so its samples follow the scorer;
    an EBT's sampling never builds it, and nothing trains."""
    repo, workdir = finished
    scoring = repo / "creativity/scoring.py"
    original = scoring.read_text()
    term = "return w.alpha_hops * hops + "
    assert original.count(term) == 1
    try:
        scoring.write_text(original.replace(term, "return 2 * w.alpha_hops * hops + "))
        jobs = planned_jobs(repo, workdir)
        assert jobs["score"] == 6 and jobs["sample"] == 2 and jobs["baseline"] == 1, jobs
        assert not TRAINS & set(jobs), jobs
    finally:
        scoring.write_text(original)
    assert planned_jobs(repo, workdir) == {}
