"""The whole DAG on the tiny preset: tables, invariants, figures, report, reruns."""
import re

import numpy as np
import pandas as pd

from conftest import REPO, TIMING_COLUMNS, read_table, run_snakemake, write_config

RUNS_COLUMNS = {
    "run_id", "arch", "variant", "depth", "width", "heads", "params", "params_with_embeddings", "budget",
    "flops_measured", "flops_6nd", "flops_analytic", "tokens", "steps", "train_loss", "val_loss", "status",
    "wall_seconds", "seed", "diverged_step", "setting", "initial_train_loss", "alpha",
}
SAMPLES_COLUMNS = {
    "run_id", "decoding", "prompt_id", "level", "start", "end", "include", "exclude", "walk", "valid",
    "error_type", "hops", "novelty", "utility", "utility_soft", "creativity", "copied", "combinatorial_novelty",
    "mean_logprob", "mean_energy", "energy_by_step", "split", "copy_share", "uses_heldout",
    "generated_tokens", "inference_flops", "inference_flops_per_token", "decode_step_flops_analytic",
    "decode_step_flops_measured",
}
METRICS_COLUMNS = {
    "run_id", "arch", "variant", "decoding", "level", "n_samples", "validity", "novelty_valid", "utility",
    "creativity", "copy_rate", "diversity_jaccard", "diversity_edit", "err_parse", "err_hallucinated_edge",
    "split", "copy_share", "combinatorial_novelty", "uses_heldout_rate", "revisit_rate", "err_revisit",
    "inference_flops", "inference_flops_per_token",
}


read = read_table


def test_tables_have_their_columns(tiny_run):
    assert RUNS_COLUMNS <= set(read(tiny_run, "runs").columns)
    assert SAMPLES_COLUMNS <= set(read(tiny_run, "samples").columns)
    assert METRICS_COLUMNS <= set(read(tiny_run, "metrics").columns)
    assert {"kind", "arch", "estimate", "ci_low", "ci_high"} <= set(read(tiny_run, "fits").columns)


def test_one_run_per_grid_point_within_budget(tiny_run):
    runs = read(tiny_run, "runs")
    assert len(runs) == 3 * 2 * 1 * 1  # architectures x budgets x shapes x seeds
    assert runs["run_id"].is_unique and set(runs["arch"]) == {"tpp", "ebt"}
    assert sorted(runs["variant"].unique()) == ["system1", "system2", "tpp"]
    ok = runs[runs.status == "ok"]
    assert (ok["flops_measured"] <= ok["budget"]).all()
    # Training stops within one step of the budget (a System-2 step with its most thinking
    # steps costs at most 1.3x the mean step: tests/test_training.py).
    assert (ok["budget"] - ok["flops_measured"] < 1.3 * ok["flops_per_step_measured"]).all()


def test_sample_invariants(tiny_run):
    s = read(tiny_run, "samples")
    prompts = pd.read_parquet(tiny_run / "results/task/prompts.parquet")
    answered = prompts.split.isin(["test", "ood"])
    assert set(s["prompt_id"]) == set(prompts.loc[answered, "prompt_id"])
    assert (s.loc[~s.valid, "utility"] == 0).all() and (s.loc[~s.valid, "creativity"] == 0).all()
    assert (s["valid"] == (s["error_type"].isin(["none", "include_violation", "exclude_violation"]))).all()
    v = s[s.valid & (s.utility > 0)]
    assert np.allclose(v["creativity"], v["utility"] * v["novelty"])
    # Every test and ood prompt is answered under every decoding setting.
    per_setting = s.groupby(["run_id", "decoding"])["prompt_id"].nunique()
    assert (per_setting == answered.sum()).all()


def test_tuning_gives_every_architecture_the_same_sweep_and_the_grid_its_best(tiny_run):
    tuning, runs = read(tiny_run, "tuning"), read(tiny_run, "runs")
    sweeps = tuning.groupby("variant")
    assert sweeps.size().nunique() == 1 and sweeps.size().iloc[0] == 2  # tiny: a two-point sweep each
    assert (sweeps["chosen"].sum() == 1).all()
    for variant, sweep in sweeps:
        best = sweep[sweep.chosen].iloc[0]
        assert best["val_loss"] == sweep["val_loss"].min()
        assert (runs.loc[runs.variant == variant, "setting"] == best["setting"]).all()


def test_inference_flops_are_recorded_and_follow_the_settings(tiny_run):
    s, m = read(tiny_run, "samples"), read(tiny_run, "metrics")
    assert (s["inference_flops"] > 0).all()
    assert np.allclose(s["inference_flops_per_token"], s["inference_flops"] / s["generated_tokens"])
    # the analytic decode step agrees with FlopCounterMode on a real step, for every setting
    ratio = s["decode_step_flops_analytic"] / s["decode_step_flops_measured"]
    assert (abs(ratio - 1) < 0.10).all()
    per = m[(m.level == 0) & (m.split == "test")].set_index(["run_id", "decoding"])["decode_step_flops_analytic"]
    for run_id in m.loc[m.arch == "ebt", "run_id"].unique():
        # thinking x2 costs more per step than x1; best-of-k costs more per answer than greedy
        assert per[run_id, "think_x2"] > per[run_id, "think_x1"]
    answer = m[(m.level == 0) & (m.split == "test")].set_index(["run_id", "decoding"])["inference_flops"]
    for run_id in m.loc[m.arch == "tpp", "run_id"].unique():
        assert answer[run_id, "bestofk_ll_k2"] > 1.5 * answer[run_id, "greedy"]


def test_projected_sampling_flops_bound_what_sampling_spent(tiny_run):
    """benchmarks/bench_dag.py projects paper.yaml's sampling compute from the config alone
    (every prompt top-level, every answer max_new_tokens long): an upper bound on what the
    samples record, and not a loose one. Best-of-k and the tilt re-rank answers that the
    sampling setting at their temperature generated, so only generated answers are summed."""
    import yaml

    from benchmarks.bench_dag import sampling_flops_per_run

    projected = sampling_flops_per_run(yaml.safe_load((tiny_run / "config.yaml").read_text()))
    s = read(tiny_run, "samples")
    generated = s[~s["decoding"].str.startswith(("bestofk_ll", "tilt_"))]
    spent = generated.groupby(generated["run_id"].str.replace(r"_s\d+$", "", regex=True))["inference_flops"].sum()
    assert set(spent.index) == set(projected)
    for point, flops in spent.items():
        assert 0.2 * projected[point] <= flops <= projected[point], point


def test_metrics_match_samples(tiny_run):
    s, m = read(tiny_run, "samples"), read(tiny_run, "metrics")
    pooled = m[m.level == 0].set_index(["run_id", "decoding", "split"])
    direct = s.groupby(["run_id", "decoding", "split"]).agg(creativity=("creativity", "mean"), validity=("valid", "mean"))
    joined = pooled.join(direct.add_suffix("_direct"))
    assert np.allclose(joined["creativity"], joined["creativity_direct"])
    assert np.allclose(joined["validity"], joined["validity_direct"])
    err = m[[c for c in m.columns if c.startswith("err_")]].sum(axis=1)
    assert np.allclose(err, 1.0)


def test_feasible_baseline_is_scored_like_a_run(tiny_run):
    b, s = pd.read_parquet(tiny_run / "results/baseline/samples.parquet"), read(tiny_run, "samples")
    prompts = pd.read_parquet(tiny_run / "results/task/prompts.parquet")
    # the walker's own hop cap is its one extra column
    assert set(b.columns) - {"hop_cap"} <= set(s.columns)
    assert set(pd.read_parquet(tiny_run / "results/baseline/metrics.parquet").columns) - {"hop_cap"} <= \
        set(read(tiny_run, "metrics").columns)
    assert (b["run_id"] == "feasible_baseline").all() and (b["decoding"] == "uniform_feasible").all()
    assert b["valid"].all() and (b["error_type"] == "none").all()
    assert set(b["prompt_id"]) == set(prompts.loc[prompts.split != "train", "prompt_id"])


def test_figures_and_report(tiny_run):
    figures = sorted(p.name for p in (tiny_run / "results/figures").glob("*.png"))
    assert len(figures) == 10 and all((tiny_run / "results/figures" / f).stat().st_size > 5000 for f in figures)
    findings = (tiny_run / "results/report/findings.html").read_text()
    assert "Does the EBT move the novelty" in findings and "feasible set" in findings
    assert "<input" in (tiny_run / "results/report/samples.html").read_text()
    result = run_snakemake(tiny_run, "--cores", "1", "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tiny_run / "results/report.html").stat().st_size > 100_000


def test_forcerun_one_plot_reruns_only_that_plot(tiny_run):
    result = run_snakemake(tiny_run, "--cores", "1", "--forcerun", "plot_pareto", "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    # the findings page embeds the Pareto figure, so it follows it; nothing else reruns
    assert jobs == {"plot_pareto": "1", "findings": "1", "all": "1", "total": "3"}, out


def test_same_config_gives_same_tables(tiny_run, tmp_path):
    """Determinism on CPU: a second run of the same config gives identical tables."""
    write_config(tmp_path, REPO / "workflow/presets/tiny.yaml")
    result = run_snakemake(tmp_path, "--cores", "2", "results/tables/metrics.parquet")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("metrics", "samples"):
        a, b = read(tiny_run, name), read(tmp_path, name)
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(
        read(tiny_run, "runs").drop(columns=TIMING_COLUMNS), read(tmp_path, "runs").drop(columns=TIMING_COLUMNS)
    )
