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
