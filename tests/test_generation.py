"""Decoding: the KV cache changes nothing but speed, seeding, EOS handling, best-of-k."""

import pytest
import torch

from conftest import default_ebt_config, default_model_config
from models.generate import best_of_k, generate_ebt, generate_tpp
from models.model import EBT, TransformerPP

CFG = default_model_config(vocab_size=30, depth=2, width=32, heads=4, max_seq_len=24)
# mixed lengths, so several groups; the last prompt repeats a length
PROMPTS = [[0, 5, 6, 1], [0, 7, 1], [0, 8, 9, 10, 11, 1], [0, 4, 4, 1], [0, 12, 1]]
NO_EOS = -1  # a random model rarely emits EOS; -1 makes every row run to max_new_tokens


def _tokens(out):
    return [[s.tokens for s in row] for row in out]


def _tpp():
    torch.manual_seed(0)
    return TransformerPP(CFG)


def _ebt():
    torch.manual_seed(0)
    model = EBT(CFG, default_ebt_config("system1", alpha=1.0))
    torch.nn.init.normal_(model.energy_head.weight, std=0.1)  # it starts at zero: a flat landscape
    return model


def test_tpp_cache_equals_recompute():
    model = _tpp()
    for kw in (dict(), dict(temperature=1.0, num_samples=3)):
        a = generate_tpp(model, PROMPTS, max_new_tokens=12, eos_id=NO_EOS, use_cache=True, **kw)
        b = generate_tpp(model, PROMPTS, max_new_tokens=12, eos_id=NO_EOS, use_cache=False, **kw)
        assert _tokens(a) == _tokens(b)
        assert all(len(s.tokens) == 12 for row in a for s in row)
        for ra, rb in zip(a, b):
            for sa, sb in zip(ra, rb):
                torch.testing.assert_close(torch.tensor(sa.logprobs), torch.tensor(sb.logprobs), atol=1e-5, rtol=0)
    assert len({tuple(s.tokens) for s in a[0]}) > 1  # the samples really differ


def test_ebt_cache_equals_recompute():
    model = _ebt()
    settings = (
        dict(),
        dict(temperature=1.0, num_samples=2, num_candidates=3, langevin_sigma=0.5, steps=4),
    )
    for kw in settings:
        a = generate_ebt(model, PROMPTS, max_new_tokens=8, eos_id=NO_EOS, use_cache=True, **kw)
        b = generate_ebt(model, PROMPTS, max_new_tokens=8, eos_id=NO_EOS, use_cache=False, **kw)
        assert _tokens(a) == _tokens(b)
        for ra, rb in zip(a, b):
            for sa, sb in zip(ra, rb):
                torch.testing.assert_close(torch.tensor(sa.energies), torch.tensor(sb.energies), atol=1e-4, rtol=0)
        K = kw.get("steps", 2)
        assert all(len(s.energy_trace) == K + 1 and len(s.energies) == 8 for row in a for s in row)
    assert len({t for row in _tokens(a) for s in row for t in s}) > 3  # not a constant output


def test_same_seed_same_output_other_seed_other_output():
    tpp, ebt = _tpp(), _ebt()
    run_t = lambda seed: _tokens(generate_tpp(tpp, PROMPTS, max_new_tokens=8, eos_id=NO_EOS, temperature=1.0, seed=seed))
    run_e = lambda seed: _tokens(generate_ebt(ebt, PROMPTS, max_new_tokens=6, eos_id=NO_EOS, temperature=1.0, seed=seed))
    assert run_t(1) == run_t(1) and run_t(1) != run_t(2)
    assert run_e(1) == run_e(1) and run_e(1) != run_e(2)


def test_stops_at_eos_and_excludes_it():
    model = _tpp()
    first = generate_tpp(model, PROMPTS, max_new_tokens=6, eos_id=NO_EOS)[0][0]
    eos = first.tokens[2]  # make the third greedy token of prompt 0 the EOS
    out = generate_tpp(model, PROMPTS, max_new_tokens=6, eos_id=eos)[0][0]
    assert out.finished and out.tokens == first.tokens[: first.tokens.index(eos)]
    assert out.logprob_sum < sum(out.logprobs)  # the EOS's own log-probability is counted
    assert not first.finished


def test_best_of_k_picks_the_most_likely_sample():
    model = _tpp()
    samples = generate_tpp(model, PROMPTS[:1], max_new_tokens=8, eos_id=NO_EOS, temperature=1.5, num_samples=6)[0]
    best = best_of_k(samples)
    assert best.logprob_sum == max(s.logprob_sum for s in samples)
    assert best.logprob_sum == sum(best.logprobs)


def test_self_verification_keeps_the_lowest_energy_candidate():
    model = _ebt()
    one = generate_ebt(model, PROMPTS, max_new_tokens=4, eos_id=NO_EOS, num_candidates=1, seed=5)
    many = generate_ebt(model, PROMPTS, max_new_tokens=4, eos_id=NO_EOS, num_candidates=16, seed=5)
    # the first token sees the same context either way; the minimum of 16 cannot lose to one draw
    # on average over prompts
    e1 = torch.tensor([r[0].energies[0] for r in one])
    e16 = torch.tensor([r[0].energies[0] for r in many])
    assert e16.mean() < e1.mean()


def test_decode_step_flops_match_the_counter_and_scale_with_thinking_and_candidates():
    """The analytic cost of one decode step agrees with FlopCounterMode on a real step, for
    every kind of setting; thinking x4 costs 4x the steps of x1, and M candidates cost M
    times one candidate."""
    from models.flops import decode_step_flops, measure_decode_step_flops

    tpp, ebt = _tpp(), _ebt()
    prompt = PROMPTS[2]
    measured = measure_decode_step_flops(tpp, prompt)
    assert abs(decode_step_flops(tpp, len(prompt) + 1) / measured - 1) < 0.10
    m = {(K, M): measure_decode_step_flops(ebt, prompt, K, M) for K in (0, 2, 8) for M in (1, 2, 4)}
    for (K, M), value in m.items():
        assert abs(decode_step_flops(ebt, len(prompt), K, M) / value - 1) < 0.10, (K, M)
    # thinking longer: the steps of x4 (K = 8) cost 4x the steps of x1 (K = 2)
    assert (m[8, 1] - m[0, 1]) / (m[2, 1] - m[0, 1]) == pytest.approx(4.0, rel=0.02)
    # self-verification: each candidate costs the same, so M = 4 adds 3 candidates to M = 1
    per_candidate = m[2, 2] - m[2, 1]
    assert (m[2, 4] - m[2, 1]) / per_candidate == pytest.approx(3.0, rel=0.02)
    assert m[2, 4] > 3 * m[2, 1] * 0.9  # candidates dominate the cost of a step


def test_answer_flops_charge_prefill_and_every_generated_token():
    from models.flops import answer_flops, decode_step_flops, prefill_flops

    tpp, ebt = _tpp(), _ebt()
    P = 6
    # Transformer++: the prefill yields token 0, then one cached step per later token
    assert answer_flops(tpp, P, 3) == prefill_flops(tpp, P) + decode_step_flops(tpp, P + 1) + decode_step_flops(tpp, P + 2)
    # EBT: every token, the first included, is a thinking step at its own context
    one = answer_flops(ebt, P, 1, thinking_steps=2)
    assert one == prefill_flops(ebt, P - 1) + decode_step_flops(ebt, P, 2)
    # x4 thinking: 17 step-forwards a token instead of 5, less the shared observed stream
    base = answer_flops(ebt, P, 4, thinking_steps=2)
    assert 2.5 < answer_flops(ebt, P, 4, thinking_steps=8) / base < 17 / 5
    assert 2.5 < answer_flops(ebt, P, 4, 2, candidates=4) / base < 4
