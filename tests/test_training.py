"""Training loop, FLOP accounting, checkpoints, divergence, and a tiny EBT that learns to think."""

import copy
import logging
import random
import re

import pandas as pd
import pytest
import torch

from conftest import default_ebt_config, default_model_config, default_train_config
from models.budget import plan_steps
from models.data import Batch, batch_positions, loss_queries, make_batch, split_train_val
from models.flops import analytic_flops, measure_step_flops
from models.generate import generate_ebt
from models.model import EBTConfig, build_model, load_model
from models.optim import RunAdamW
from models.train import TrainConfig, train_batch, train_to_budget

BOS, SEP, EOS, PAD = 0, 1, 2, 3
V = 16


def copy_task(n=400, seed=0):
    """BOS x.. SEP x.. EOS: the completion repeats the prompt (loss on the completion)."""
    rng = random.Random(seed)
    seqs, starts = [], []
    for _ in range(n):
        x = [rng.randint(4, V - 1) for _ in range(rng.randint(2, 4))]
        prompt = [BOS, *x, SEP]
        seqs.append(prompt + x + [EOS])
        starts.append(len(prompt))
    return seqs, starts


TINY = default_model_config(vocab_size=V, depth=2, width=32, heads=4, max_seq_len=16)


class Stop(Exception):
    pass


def _stop_at(k):
    def hook(step, row):
        if step >= k:
            raise Stop

    return hook


def test_data_order_is_seeded_and_covers_each_epoch():
    n, B = 10, 4
    stream = [p for s in range(5) for p in batch_positions(n, B, s, seed=1)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    assert stream == [p for s in range(5) for p in batch_positions(n, B, s, seed=1)]
    assert stream != [p for s in range(5) for p in batch_positions(n, B, s, seed=2)]
    tr, va = split_train_val(100, 0.1, seed=0)
    assert len(va) == 10 and not set(tr) & set(va) and split_train_val(100, 0.1, seed=0) == (tr, va)


def test_batch_mask_covers_completion_only():
    b = make_batch([[0, 5, 6, 1, 5, 6, 2], [0, 7, 1, 7, 2]], [4, 3], [0, 1], pad_id=3, length=7)
    assert b.idx.shape == (2, 6)
    assert b.mask[0].tolist() == [False, False, False, True, True, True]
    assert b.mask[1].tolist() == [False, False, True, True, False, False]
    assert b.targets[1, :4].tolist() == [7, 1, 7, 2] and b.idx[1, 4:].tolist() == [3, 3]


def _step_flops(model, batch, thinking_steps=None):
    out = analytic_flops(model, *batch.idx.shape, thinking_steps, batch.n_queries)
    out["flops_measured"] = measure_step_flops(model, batch, thinking_steps)
    return out


@pytest.mark.parametrize(
    "arch,variant,thinking_steps", [("tpp", None, None), ("ebt", "system1", 2), ("ebt", "system2", 2), ("ebt", "system2", 3)]
)
def test_measured_flops_match_analytic_within_10_percent(arch, variant, thinking_steps):
    torch.manual_seed(0)
    cfg = default_model_config(vocab_size=64, depth=2, width=64, heads=4, max_seq_len=33)
    model = build_model(arch, cfg, default_ebt_config(variant) if variant else None)
    idx = torch.randint(0, 64, (4, 32))
    mask = torch.ones(4, 32, dtype=torch.bool)
    f = _step_flops(model, Batch(idx, idx, mask), thinking_steps)
    assert abs(f["flops_analytic"] / f["flops_measured"] - 1) < 0.10
    # measured >= analytic: the kernels do the dense S x S attention, the analytic term is causal
    assert f["flops_measured"] >= f["flops_analytic"]
    if arch == "ebt":  # 6ND ignores the thinking passes: far below the real cost
        assert f["flops_6nd"] < 0.3 * f["flops_measured"]
        # Querying only the loss positions (12 of 32 here) cuts the thinking passes, and
        # the analytic count follows the measured one there too.
        mask[:, :20] = False
        cut = _step_flops(model, Batch(idx, idx, mask, 12), thinking_steps)
        assert abs(cut["flops_analytic"] / cut["flops_measured"] - 1) < 0.10
        assert cut["flops_measured"] < 0.6 * f["flops_measured"]


def test_system2_truncation_makes_extra_steps_cheap():
    """System 2 keeps a graph on its final step only, so a third step adds a forward and a
    backward to p (2F), not the 6F of a System-1 step: measured, 3 steps cost far less than
    1.5x 2 steps."""
    torch.manual_seed(0)
    cfg = default_model_config(vocab_size=64, depth=2, width=64, heads=4, max_seq_len=33)
    model = build_model("ebt", cfg, default_ebt_config("system2"))
    batch = Batch(torch.randint(0, 64, (4, 32)), torch.randint(0, 64, (4, 32)), torch.ones(4, 32, dtype=torch.bool))
    two, three = measure_step_flops(model, batch, 2), measure_step_flops(model, batch, 3)
    assert 1.05 < three / two < 1.3


def _cfg(**kw):
    """config.yaml's train section, at the tiny scale of these tests."""
    return default_train_config(**{**dict(batch_size=8, lr=3e-3, checkpoint_every_steps=5, eval_every_steps=4, seed=3,
                                          warmup_fraction=0.2, num_threads=1, device="cpu"), **kw})


def _steps_budget(arch, ebt_cfg, steps, batch_size=8):
    """A FLOP budget worth `steps` training steps of TINY on the copy task, from the same
    measured step cost that train_to_budget plans with."""
    torch.manual_seed(0)
    model = build_model(arch, TINY, ebt_cfg)
    seqs, starts = copy_task(200)
    n_queries = loss_queries(seqs, starts) if arch == "ebt" else None  # as train_to_budget does
    probe = make_batch(seqs, starts, list(range(batch_size)), PAD, max(map(len, seqs)), n_queries)
    plan = plan_steps(model, probe, 1e12, ("test", arch, repr(ebt_cfg)))
    return plan.flops_per_step * (steps + 0.5)


@pytest.mark.parametrize("arch,ebt_cfg", [("tpp", None), ("ebt", default_ebt_config("system2", replay_size=16))])
def test_killed_then_resumed_run_is_bit_identical(tmp_path, caplog, arch, ebt_cfg):
    caplog.set_level(logging.INFO, logger="models.train")
    seqs, starts = copy_task(200)
    budget = _steps_budget(arch, ebt_cfg, 12)
    full = train_to_budget(TINY, arch, ebt_cfg, _cfg(), seqs, starts, PAD, budget, tmp_path / "full")
    assert full["steps"] == 12 and full["status"] == "ok"
    with pytest.raises(Stop):  # "killed" after step 8: steps 6-8 are lost, resume from step 5
        train_to_budget(TINY, arch, ebt_cfg, _cfg(), seqs, starts, PAD, budget, tmp_path / "cut", on_step=_stop_at(8))
    resumed = train_to_budget(TINY, arch, ebt_cfg, _cfg(), seqs, starts, PAD, budget, tmp_path / "cut")
    assert f"resumed {tmp_path / 'cut'} at step 5 / 12" in caplog.messages  # not restarted from scratch
    a = load_model(tmp_path / "full" / "model.pt").state_dict()
    b = load_model(tmp_path / "cut" / "model.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full["curve"]["train_loss"].tolist() == resumed["curve"]["train_loss"].tolist()
    assert resumed["flops_measured"] == full["flops_measured"]


def test_corrupt_checkpoint_restarts_from_scratch(tmp_path):
    seqs, starts = copy_task(200)
    budget = _steps_budget("tpp", None, 6)
    full = train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, budget, tmp_path / "full")
    with pytest.raises(Stop):  # leaves the checkpoint of step 5
        train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, budget, tmp_path / "cut", on_step=_stop_at(5))
    (tmp_path / "bad").mkdir()
    good = (tmp_path / "cut" / "checkpoint.pt").read_bytes()
    (tmp_path / "bad" / "checkpoint.pt").write_bytes(good[: len(good) // 2])  # truncated
    again = train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, budget, tmp_path / "bad")
    assert again["status"] == "ok" and again["steps"] == 6
    assert again["curve"]["train_loss"].tolist() == full["curve"]["train_loss"].tolist()


def test_outputs_are_written_and_loadable(tmp_path):
    seqs, starts = copy_task(200)
    res = train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, _steps_budget("tpp", None, 9), tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"model.pt", "curve.parquet", "summary.json"} <= files
    assert "checkpoint.pt" not in files  # a finished run leaves no checkpoint to resume stale
    curve = res["curve"]
    assert curve["val_loss"].notna().tolist() == [s % 4 == 0 or s == 9 for s in curve["step"]]
    assert res["tokens"] == 9 * 8 * (max(map(len, seqs)) - 1)
    assert res["flops_measured"] == pytest.approx(9 * res["flops_per_step_measured"])
    model = load_model(tmp_path / "model.pt")
    assert model.param_counts()["params"] == res["params"]


def test_huge_lr_is_reported_as_diverged(tmp_path):
    seqs, starts = copy_task(200)
    res = train_to_budget(TINY, "tpp", None, _cfg(lr=1e12, grad_clip=1e30, warmup_fraction=0.0), seqs, starts, PAD,
                          _steps_budget("tpp", None, 30), tmp_path)
    assert res["status"] == "diverged"
    assert res["diverged_step"] is not None and 0 < res["diverged_step"] < 30
    assert res["steps"] == res["diverged_step"]


def test_budget_below_one_step_raises(tmp_path):
    seqs, starts = copy_task(50)
    with pytest.raises(ValueError, match="flop_budget"):
        train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, 1e3, tmp_path)


def test_trained_ebt_lowers_its_energy_while_thinking(tmp_path):
    """Train a tiny System-1 EBT on the copy task, then check that thinking descends."""
    seqs, starts = copy_task(600, seed=1)
    ebt_cfg = default_ebt_config("system1")
    tc = _cfg(batch_size=32, lr=3e-3, checkpoint_every_steps=10_000, eval_every_steps=10_000, warmup_fraction=0.05)
    res = train_to_budget(TINY, "ebt", ebt_cfg, tc, seqs, starts, PAD, _steps_budget("ebt", ebt_cfg, 150, 32), tmp_path)
    assert res["status"] == "ok"
    first = res["curve"]["train_loss"].head(10).mean()
    assert res["train_loss"] < 0.6 * first  # it learned something
    model = load_model(tmp_path / "model.pt")
    prompts = [s[: st] for s, st in zip(seqs[:64], starts[:64])]
    out = generate_ebt(model, prompts, max_new_tokens=6, eos_id=EOS, steps=4)
    traces = torch.tensor([s[0].energy_trace for s in out]).mean(0)  # [K+1]
    # Steps 1..4 all run on the last of System 1's two landscapes (energies on different
    # landscapes are not comparable): there the energy never rises (beyond float noise once
    # thinking has converged) and ends lower than it started.
    assert (traces[2:] <= traces[1:-1] + 1e-5).all() and traces[-1] < traces[1] - 1e-4, traces


# ----------------------------------------------------------------------------- batched runs


def _batch_cfgs(arch):
    """Three runs of one batch, differing in seed and, as in a tuning sweep, in learning rate
    and EBT step size."""
    ebt = {"tpp": None, "system1": default_ebt_config("system1"),
           "system2": default_ebt_config("system2", replay_size=16)}[arch]
    train = [_cfg(seed=s, lr=lr) for s, lr in ((0, 3e-3), (1, 3e-3), (2, 6e-3))]
    ebts = [None if ebt is None else EBTConfig(**{**ebt.__dict__, "alpha": a}) for a in (100.0, 100.0, 40.0)]
    return ("tpp" if ebt is None else "ebt"), ebts, train


def _weights(path):
    return load_model(path).state_dict()


@pytest.mark.parametrize("variant", ["tpp", "system1", "system2"])
def test_a_run_trained_in_a_batch_equals_the_run_trained_alone(tmp_path, variant):
    arch, ebts, train = _batch_cfgs(variant)
    seqs, starts = copy_task(200)
    budget = _steps_budget(arch, ebts[0], 10)
    dirs = [tmp_path / f"batch{r}" for r in range(3)]
    batched = train_batch(TINY, arch, ebts, train, dirs, seqs, starts, PAD, budget)
    for r in range(3):
        alone = train_to_budget(TINY, arch, ebts[r], train[r], seqs, starts, PAD, budget, tmp_path / f"alone{r}")
        a, b = alone.pop("curve"), batched[r]["curve"]
        pd.testing.assert_frame_equal(a, b, rtol=1e-5)
        assert set(alone) == set(batched[r]) - {"curve"}  # the same per-run schema
        for key in ("val_loss", "train_eval_loss", "epochs", "flops_measured", "steps", "params"):
            assert alone[key] == pytest.approx(batched[r][key], rel=1e-5), key
        wa, wb = _weights(tmp_path / f"alone{r}" / "model.pt"), _weights(dirs[r] / "model.pt")
        assert all(torch.allclose(wa[k], wb[k], rtol=1e-5, atol=1e-6) for k in wa)
    # the runs really differ: a batch is not three copies of one run
    assert batched[0]["curve"]["train_loss"].tolist() != batched[1]["curve"]["train_loss"].tolist()


@pytest.mark.parametrize("variant", ["tpp", "system2"])
def test_a_killed_batch_resumes_every_run_bit_identically(tmp_path, caplog, variant):
    caplog.set_level(logging.INFO, logger="models.train")
    arch, ebts, train = _batch_cfgs(variant)
    seqs, starts = copy_task(200)
    budget = _steps_budget(arch, ebts[0], 12)
    full = train_batch(TINY, arch, ebts, train, [tmp_path / f"full{r}" for r in range(3)], seqs, starts, PAD, budget)
    cut = [tmp_path / f"cut{r}" for r in range(3)]
    with pytest.raises(Stop):  # killed after step 8: every run resumes from its step-5 checkpoint
        train_batch(TINY, arch, ebts, train, cut, seqs, starts, PAD, budget, on_step=_stop_at(8))
    # Run 2's checkpoint is lost too (a kill between two runs' checkpoint writes): it restarts
    # from scratch and the others wait for it, then all go on together.
    (cut[2] / "checkpoint.pt").unlink()
    resumed = train_batch(TINY, arch, ebts, train, cut, seqs, starts, PAD, budget)
    assert {f"resumed {cut[r]} at step 5 / 12" for r in (0, 1)} <= set(caplog.messages)
    for r in range(3):
        assert full[r]["curve"]["train_loss"].tolist() == resumed[r]["curve"]["train_loss"].tolist()
        a, b = _weights(tmp_path / f"full{r}" / "model.pt"), _weights(cut[r] / "model.pt")
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert not (cut[r] / "checkpoint.pt").exists()


def test_a_diverged_run_does_not_stop_its_batch_mates(tmp_path):
    seqs, starts = copy_task(200)
    budget = _steps_budget("tpp", None, 20)
    train = [_cfg(seed=0), _cfg(seed=1, lr=1e12, warmup_fraction=0.0)]
    train = [TrainConfig(**{**c.__dict__, "grad_clip": 1e30}) for c in train]
    batched = train_batch(TINY, "tpp", [None, None], train, [tmp_path / "ok", tmp_path / "bad"], seqs, starts, PAD, budget)
    assert batched[1]["status"] == "diverged" and 0 < batched[1]["diverged_step"] < 20
    assert batched[0]["status"] == "ok" and batched[0]["steps"] == 20
    alone = train_to_budget(TINY, "tpp", None, train[0], seqs, starts, PAD, budget, tmp_path / "alone")
    assert alone["curve"]["train_loss"].tolist() == pytest.approx(batched[0]["curve"]["train_loss"].tolist(), rel=1e-5)


ESTIMATE = re.compile(r"planned (\d+) steps, (\S+) FLOPs per run, (\d+) runs(, resuming at step (\d+) with (\d+) left)?; "
                      r"estimated ([\d.]+) s at the measured ([\d.]+) ms/step")


def test_the_log_gives_the_plan_and_an_estimated_time_before_the_first_step(tmp_path, caplog):
    """One line before the first step: steps, FLOPs per run, runs, and the time the steps left
    will take at the rate of a probe step; a resumed batch counts only the steps left. The
    probe changes nothing a run computes (the batch equals the runs alone, above)."""
    caplog.set_level(logging.INFO, logger="models.train")
    arch, ebts, train = _batch_cfgs("system2")
    seqs, starts = copy_task(200)
    budget = _steps_budget(arch, ebts[0], 12)
    seen_at_first_step = []

    def hook(done, rows):
        seen_at_first_step.extend([] if seen_at_first_step else [r.getMessage() for r in caplog.records])
        _stop_at(8)(done, rows)

    dirs = [tmp_path / f"run{r}" for r in range(3)]
    with pytest.raises(Stop):
        train_batch(TINY, arch, ebts, train, dirs, seqs, starts, PAD, budget, on_step=hook)
    lines = [m for m in map(ESTIMATE.search, seen_at_first_step) if m]
    assert len(lines) == 1, seen_at_first_step
    steps, flops, runs, _, _, _, seconds, ms = lines[0].groups()
    assert (int(steps), int(runs)) == (12, 3)
    assert float(seconds) == pytest.approx(12 * float(ms) / 1e3, rel=0.05, abs=0.05)
    caplog.clear()
    summaries = train_batch(TINY, arch, ebts, train, dirs, seqs, starts, PAD, budget)  # from the step-5 checkpoints
    assert float(flops) == pytest.approx(summaries[0]["flops_measured"], rel=0.05)
    resumed = [m for m in map(ESTIMATE.search, caplog.messages) if m]
    assert len(resumed) == 1 and resumed[0].group(4) and resumed[0].group(5, 6) == ("5", "7")
    assert float(resumed[0].group(7)) == pytest.approx(7 * float(resumed[0].group(8)) / 1e3, rel=0.05, abs=0.05)


def test_runs_that_differ_in_a_shared_setting_are_refused(tmp_path):
    seqs, starts = copy_task(50)
    with pytest.raises(ValueError, match="batch_size"):
        train_batch(TINY, "tpp", [None, None], [_cfg(), _cfg(batch_size=4)], [tmp_path / "a", tmp_path / "b"],
                    seqs, starts, PAD, 1e9)


def test_run_adamw_matches_torch_adamw_on_one_run():
    torch.manual_seed(0)
    model = build_model("tpp", TINY)
    reference = copy.deepcopy(model)
    ours = RunAdamW(model.optimizer_groups(0.1), n_runs=1, betas=(0.9, 0.95))
    theirs = torch.optim.AdamW([{k: v for k, v in g.items() if k != "lr_scale"} for g in reference.optimizer_groups(0.1)],
                               lr=1e-2, betas=(0.9, 0.95))
    batch = make_batch(*copy_task(8), list(range(8)), PAD, 12)
    for _ in range(5):
        for m in (model, reference):
            m.training_loss(batch).sum().backward()
        ours.clip_grad_norm_(0.5)
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        ours.step(torch.tensor([1e-2]), torch.tensor([True]))
        theirs.step()
        ours.zero_grad(), theirs.zero_grad()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_a_checkpoint_of_other_configs_is_not_resumed(tmp_path):
    """A stale checkpoint (the run's settings changed since) restarts the run, never fails it."""
    seqs, starts = copy_task(200)
    budget = _steps_budget("tpp", None, 8)
    with pytest.raises(Stop):
        train_to_budget(TINY, "tpp", None, _cfg(), seqs, starts, PAD, budget, tmp_path, on_step=_stop_at(6))
    changed = train_to_budget(TINY, "tpp", None, _cfg(weight_decay=0.5), seqs, starts, PAD, budget, tmp_path)
    fresh = train_to_budget(TINY, "tpp", None, _cfg(weight_decay=0.5), seqs, starts, PAD, budget, tmp_path / "fresh")
    assert changed["curve"]["train_loss"].tolist() == fresh["curve"]["train_loss"].tolist()
