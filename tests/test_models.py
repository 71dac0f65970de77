"""Structural properties of the two models: causality, leakage-freedom, counts, gradients,
the start of training, and System 2 as the official recipe has it."""

import math

import torch

from conftest import default_ebt_config, default_model_config
from models.data import Batch
from models.model import EBT, RunRNG, TransformerPP

CFG = default_model_config(vocab_size=40, depth=2, width=32, heads=4, max_seq_len=24)


def _trained_like(model: EBT) -> EBT:
    """The energy head starts at zero (a flat landscape); structural tests need it non-zero."""
    torch.nn.init.normal_(model.energy_head.weight, std=0.5)
    return model


def test_tpp_is_causal():
    torch.manual_seed(0)
    model = TransformerPP(CFG)
    idx = torch.randint(0, 40, (3, 16))
    j = 9
    changed = idx.clone()
    changed[:, j] = (changed[:, j] + 1) % 40
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :j], b[:, :j], rtol=0, atol=1e-6)
    assert (a[:, j:] - b[:, j:]).abs().amax() > 1e-4  # the change is visible from position j on


def _energy_and_grad(model, idx, z):
    S = idx.size(1)
    obs = model.observed_kv(idx)
    mask = torch.ones(S, S, dtype=torch.bool).tril()
    z = z.clone().requires_grad_(True)
    e = model.energy(z, obs, torch.arange(1, S + 1), mask, landscape=0)
    (g,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), g


def test_ebt_prediction_never_sees_the_token_it_predicts():
    torch.manual_seed(0)
    model = _trained_like(EBT(CFG, default_ebt_config("system1")))
    idx = torch.randint(0, 40, (3, 16))
    z = torch.randn(3, 16, 40)
    i = 7  # prediction i is the candidate for token i+1
    changed = idx.clone()
    changed[:, i + 1] = (changed[:, i + 1] + 1) % 40
    e_a, g_a = _energy_and_grad(model, idx, z)
    e_b, g_b = _energy_and_grad(model, changed, z)
    torch.testing.assert_close(e_a[:, : i + 1], e_b[:, : i + 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(g_a[:, : i + 1], g_b[:, : i + 1], rtol=0, atol=1e-9)
    # prediction i+1 does observe token i+1
    assert (e_a[:, i + 1] - e_b[:, i + 1]).abs().amax() > 1e-5


def test_ebt_candidates_do_not_see_each_other():
    torch.manual_seed(0)
    model = _trained_like(EBT(CFG, default_ebt_config("system1")))
    idx = torch.randint(0, 40, (2, 12))
    z = torch.randn(2, 12, 40)
    other = z.clone()
    other[:, 5] = torch.randn(2, 40) * 5  # change one candidate only
    e_a, _ = _energy_and_grad(model, idx, z)
    e_b, _ = _energy_and_grad(model, idx, other)
    keep = [p for p in range(12) if p != 5]
    torch.testing.assert_close(e_a[:, keep], e_b[:, keep], rtol=0, atol=1e-6)
    assert (e_a[:, 5] - e_b[:, 5]).abs().amax() > 1e-6


def test_param_counts_follow_the_stated_convention():
    V, d = CFG.vocab_size, CFG.width
    tpp, ebt = TransformerPP(CFG), EBT(CFG, default_ebt_config("system1"))
    for model, excluded in [(tpp, 2 * V * d), (ebt, 2 * V * d)]:
        c = model.param_counts()
        assert c["params_with_embeddings"] == sum(p.numel() for p in model.parameters())
        assert c["params"] == c["params_with_embeddings"] - excluded
    # same trunk; the EBT adds a step table, an energy head and its learnable alpha
    extra = ebt.step_emb.numel() + d + 1
    assert ebt.param_counts()["params"] == tpp.param_counts()["params"] + extra


def test_ebt_training_loss_reaches_every_parameter_through_second_order_terms():
    for variant in ("system1", "system2"):
        torch.manual_seed(0)
        model = _trained_like(EBT(CFG, default_ebt_config(variant)))
        idx = torch.randint(0, 40, (2, 10))
        targets = torch.randint(0, 40, (2, 10))
        mask = torch.ones(2, 10, dtype=torch.bool)
        loss = model.training_loss(Batch(idx, targets, mask), RunRNG([0]), thinking_steps=2).sum()
        loss.backward()
        assert torch.isfinite(loss)
        # alpha and the energy head only influence the loss through dE/dp, i.e. second order
        if variant == "system1":
            assert model.alpha.grad.abs() > 0
        else:  # System 2 keeps alpha fixed
            assert not model.alpha.requires_grad
        assert model.energy_head.weight.grad.abs().sum() > 0
        assert model.tok_emb.weight.grad.abs().sum() > 0  # via the observed stream's keys/values


def test_ebt_loss_on_loss_positions_only_equals_the_full_layout():
    """Querying only the positions that carry loss (n_queries) must not change the loss or
    any gradient: the dropped candidates (prompt, padding) feed nothing."""
    torch.manual_seed(0)
    model = _trained_like(EBT(CFG, default_ebt_config("system1")))
    idx = torch.randint(0, 40, (3, 12))
    targets = torch.randint(0, 40, (3, 12))
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 4:10] = True  # prompt 0..3, completion 4..9, padding after
    mask[1, 7:12] = True
    mask[2, 2:5] = True
    results = []
    for n_queries in (None, 6):
        model.zero_grad()
        loss = model.training_loss(Batch(idx, targets, mask, n_queries), RunRNG([1])).sum()  # same z_0 draws
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (full, g_full), (cut, g_cut) = results
    torch.testing.assert_close(cut, full, rtol=1e-5, atol=1e-6)
    for name in g_full:
        torch.testing.assert_close(g_cut[name], g_full[name], rtol=1e-4, atol=1e-7, msg=name)
    assert not torch.allclose(model.training_loss(Batch(idx, targets, ~mask), RunRNG([1])).sum().detach(), full)
    try:
        model.training_loss(Batch(idx, targets, mask, 5), RunRNG([1]))
    except ValueError as e:
        assert "n_queries=5" in str(e)
    else:
        raise AssertionError("a row with more loss positions than n_queries must be refused")


def _default_config():
    import yaml
    from pathlib import Path

    return yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())


def test_ebt_starts_near_a_uniform_guess_on_the_default_vocabulary():
    """At initialisation one step of thinking must not push the logits far from uniform:
    the first training loss of both EBT variants, with the default config's settings (alpha
    the first its sweep tries), is
    close to ln|V|. (It was about 150 nats before the energy head started at zero.)"""
    cfg = _default_config()
    V = 6 + cfg["graph"]["num_labels"] + cfg["graph"]["num_nodes"]  # specials + labels + nodes
    torch.manual_seed(0)
    idx, targets = torch.randint(0, V, (2, 64, 20))
    mask = torch.ones(64, 20, dtype=torch.bool)
    for variant in ("system1", "system2"):
        model = EBT(default_model_config(vocab_size=V, depth=2, width=64, heads=4, max_seq_len=24),
                    default_ebt_config(variant))
        assert torch.count_nonzero(model.step_emb) == 0  # the step signal starts at zero
        loss = model.training_loss(Batch(idx, targets, mask), RunRNG([0]))
        assert abs(loss.item() - math.log(V)) < 0.5, (variant, loss.item(), math.log(V))
    # the failure it guards against: an energy head at the trunk's init with the official
    # alpha = 500 (the old start) pushes the first step's logits hundreds of nats away
    model = EBT(default_model_config(vocab_size=V, depth=2, width=64, heads=4, max_seq_len=24),
                default_ebt_config("system1", alpha=500.0))
    torch.nn.init.normal_(model.energy_head.weight, std=0.02)
    assert model.training_loss(Batch(idx, targets, mask), RunRNG([0])).item() > 10 * math.log(V)


def test_system2_keeps_a_gradient_graph_on_its_final_step_only():
    torch.manual_seed(0)
    model = EBT(CFG, default_ebt_config("system2", replay_fraction=0.0))
    calls = []
    descend = model.descend

    def spy(z, *args, create_graph):
        calls.append((create_graph, z.grad_fn is None))
        return descend(z, *args, create_graph=create_graph)

    model.descend = spy
    idx, targets = torch.randint(0, 40, (2, 3, 10))
    loss = model.training_loss(Batch(idx, targets, torch.ones(3, 10, dtype=torch.bool)), RunRNG([0]), thinking_steps=3)
    # each step starts from a detached z (a leaf, no link to earlier steps), and only the
    # last one builds the second-order graph
    assert calls == [(False, True), (False, True), (True, True)]
    loss.sum().backward()
    assert model.energy_head.weight.grad.abs().sum() > 0
    # System 1 keeps a graph on every step
    calls.clear()
    model = EBT(CFG, default_ebt_config("system1", steps=2))
    descend = model.descend
    model.descend = spy
    model.training_loss(Batch(idx, targets, torch.ones(3, 10, dtype=torch.bool)), RunRNG([0]))
    assert [g for g, _ in calls] == [True, True]


def test_replayed_row_carries_its_own_sequence_context():
    """A replayed row brings back its own inputs, targets, mask and final logits, together."""
    torch.manual_seed(0)
    model = EBT(CFG, default_ebt_config("system2", replay_fraction=0.5, replay_size=8))
    S, Q = 10, 4
    stored_idx = torch.arange(8)[:, None].expand(8, S) + 20  # row r is filled with token 20 + r
    stored_z = torch.arange(8, dtype=torch.float)[:, None, None].expand(8, Q, 40)  # z of row r is r everywhere
    mask = torch.zeros(8, S, dtype=torch.bool)
    mask[:, 5:9] = True
    model.replay[0].push(stored_idx, stored_idx + 1, mask, stored_z)
    fresh = Batch(torch.zeros(6, S, dtype=torch.long), torch.zeros(6, S, dtype=torch.long),
                  torch.ones(6, S, dtype=torch.bool), Q)
    idx, targets, row_mask, (z,) = model._with_replayed_rows(fresh, RunRNG([0]))
    assert idx.shape == (6, S) and z.shape == (3, Q, 40)  # 3 of 6 rows replayed, fresh rows first
    assert (idx[:3] == 0).all()
    for row in range(3):
        r = int(idx[3 + row, 0]) - 20
        assert (idx[3 + row] == 20 + r).all() and (targets[3 + row] == 21 + r).all()
        assert (z[row] == r).all()  # the logits this very sequence ended with
        assert torch.equal(row_mask[3 + row], mask[r])
    assert len({int(i) for i in idx[3:, 0]}) == 3  # three different stored rows
    # a training step stores its rows, and an empty buffer replays nothing
    empty = EBT(CFG, default_ebt_config("system2", replay_fraction=0.5, replay_size=8))
    assert empty._with_replayed_rows(fresh, RunRNG([0]))[3] is None
    empty.training_loss(Batch(torch.randint(0, 40, (6, S)), torch.randint(0, 40, (6, S)), mask[:6], Q), RunRNG([0]))
    assert len(empty.replay[0].rows) == 6 and empty.replay[0].rows[0]["z"].shape == (Q, 40)
    # Beside a batch-mate that replays, a run whose buffer cannot replay yet (it restarted while
    # the other resumed) keeps its fresh rows, as it would alone.
    pair = EBT(CFG, default_ebt_config("system2", replay_fraction=0.5, replay_size=8), n_runs=2)
    pair.replay[0].push(stored_idx, stored_idx + 1, mask, stored_z)
    both = Batch(*(torch.cat([t, t]) for t in (fresh.idx, fresh.targets, fresh.mask)), Q)
    idx, targets, row_mask, z = pair._with_replayed_rows(both, RunRNG([0, 1]))
    assert (idx[3:6] >= 20).all() and torch.equal(idx[6:], fresh.idx) and torch.equal(row_mask[6:], fresh.mask)
    assert z[0].shape == (3, Q, 40) and z[1] is None


def test_system2_thinking_step_counts_are_keyed_by_the_step_and_cover_the_range():
    """Runs sharing a batch must take one graph: the count of step t is the same for every
    run, and over many steps it takes every value of random_steps."""
    a = EBT(CFG, default_ebt_config("system2", random_steps=(2, 4)))
    b = EBT(CFG, default_ebt_config("system2", random_steps=(2, 4)), n_runs=3)
    counts = [a.thinking_steps_at(t) for t in range(200)]
    assert counts == [b.thinking_steps_at(t) for t in range(200)]
    assert set(counts) == {2, 3, 4} and min(counts.count(k) for k in (2, 3, 4)) > 40
