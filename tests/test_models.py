"""Structural properties of the two models: causality, leakage-freedom, counts, gradients."""

import torch

from models.model import EBT, EBTConfig, ModelConfig, TransformerPP

CFG = ModelConfig(vocab_size=40, depth=2, width=32, heads=4, max_seq_len=24)


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
    e = model.energy(z, obs, torch.arange(1, S + 1), mask, step=0)
    (g,) = torch.autograd.grad(e.sum(), z)
    return e.detach(), g


def test_ebt_prediction_never_sees_the_token_it_predicts():
    torch.manual_seed(0)
    model = EBT(CFG, EBTConfig())
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
    model = EBT(CFG, EBTConfig())
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
    tpp, ebt = TransformerPP(CFG), EBT(CFG, EBTConfig())
    for model, excluded in [(tpp, 2 * V * d), (ebt, 2 * V * d)]:
        c = model.param_counts()
        assert c["params_with_embeddings"] == sum(p.numel() for p in model.parameters())
        assert c["params"] == c["params_with_embeddings"] - excluded
    # same trunk; the EBT adds a step table, an energy head and log(alpha)
    extra = ebt.step_emb.weight.numel() + d + 1
    assert ebt.param_counts()["params"] == tpp.param_counts()["params"] + extra


def test_ebt_training_loss_reaches_every_parameter_through_second_order_terms():
    for variant in ("system1", "system2"):
        torch.manual_seed(0)
        model = EBT(CFG, EBTConfig(variant=variant))
        idx = torch.randint(0, 40, (2, 10))
        targets = torch.randint(0, 40, (2, 10))
        mask = torch.ones(2, 10, dtype=torch.bool)
        loss = model.loss(idx, targets, mask, n_steps=2)
        loss.backward()
        assert torch.isfinite(loss)
        # alpha and the energy head only influence the loss through dE/dz, i.e. second order
        assert model.log_alpha.grad.abs() > 0
        assert model.energy_head.weight.grad.abs().sum() > 0
        assert model.tok_emb.weight.grad.abs().sum() > 0  # via the observed stream's keys/values


def test_ebt_loss_on_loss_positions_only_equals_the_full_layout():
    """Querying only the positions that carry loss (n_queries) must not change the loss or
    any gradient: the dropped candidates (prompt, padding) feed nothing."""
    torch.manual_seed(0)
    model = EBT(CFG, EBTConfig())
    idx = torch.randint(0, 40, (3, 12))
    targets = torch.randint(0, 40, (3, 12))
    mask = torch.zeros(3, 12, dtype=torch.bool)
    mask[0, 4:10] = True  # prompt 0..3, completion 4..9, padding after
    mask[1, 7:12] = True
    mask[2, 2:5] = True
    results = []
    for n_queries in (None, 6):
        model.zero_grad()
        torch.manual_seed(1)  # same z_0 draws in both layouts
        loss = model.loss(idx, targets, mask, n_steps=2, n_queries=n_queries)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (full, g_full), (cut, g_cut) = results
    torch.testing.assert_close(cut, full, rtol=1e-5, atol=1e-6)
    for name in g_full:
        torch.testing.assert_close(g_cut[name], g_full[name], rtol=1e-4, atol=1e-7, msg=name)
    assert not torch.allclose(model.loss(idx, targets, ~mask, n_steps=2).detach(), full)  # the mask matters
    try:
        model.loss(idx, targets, mask, n_steps=2, n_queries=5)
    except ValueError as e:
        assert "n_queries=5" in str(e)
    else:
        raise AssertionError("a row with more loss positions than n_queries must be refused")
