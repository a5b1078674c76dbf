"""Losses against naive references written here: weighted CE, the OTR estimator and its closed form."""

from __future__ import annotations

import math

import pytest
import torch

from drift_train.losses import IGNORE_INDEX, OTRConfig, drift_loss, otr_exact_terms, otr_sampled_terms

VOCAB = 7


def make_batch(seed: int = 0, batch: int = 3, length: int = 6):
    """Random logits, labels with a few supervised positions per row, and per-row weights."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, VOCAB, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, VOCAB, (batch, length), generator=g)
    labels[:, :2] = IGNORE_INDEX  # the prompt
    labels[1, 4:] = IGNORE_INDEX  # padding
    weights = torch.tensor([0.2, 1.7, 1.1], dtype=torch.float64)[:, None].expand(batch, length).clone()
    return logits, labels, weights


def naive_weighted_ce(logits, labels, row_weights) -> torch.Tensor:
    """Σ_i w_i Σ_t −log softmax(z_{i,t−1})[x_{i,t}] / #supervised tokens, written as a plain loop."""
    total, count = 0.0, 0
    for i in range(labels.shape[0]):
        for t in range(1, labels.shape[1]):
            if labels[i, t] == IGNORE_INDEX:
                continue
            z = logits[i, t - 1]
            total = total - row_weights[i] * (z[labels[i, t]] - torch.logsumexp(z, dim=0))
            count += 1
    return total / count


def test_wsft_gradient_equals_naive_weighted_cross_entropy() -> None:
    logits, labels, weights = make_batch()
    loss, _ = drift_loss(logits, labels, weights, "wsft")
    (grad,) = torch.autograd.grad(loss, logits)
    naive = naive_weighted_ce(logits, labels, weights[:, 0])
    (naive_grad,) = torch.autograd.grad(naive, logits)
    torch.testing.assert_close(loss, naive)
    torch.testing.assert_close(grad, naive_grad)
    # sft ignores the weights
    sft, _ = drift_loss(logits, labels, weights, "sft")
    torch.testing.assert_close(sft, naive_weighted_ce(logits, labels, torch.ones(3, dtype=torch.float64)))


def test_global_normaliser_makes_micro_batches_add_up() -> None:
    logits, labels, weights = make_batch(1)
    full, _ = drift_loss(logits, labels, weights, "wsft")
    n = int((labels[:, 1:] != IGNORE_INDEX).sum())
    parts = sum(
        drift_loss(logits[i : i + 1], labels[i : i + 1], weights[i : i + 1], "wsft", normaliser=n)[0]
        for i in range(3)
    )
    torch.testing.assert_close(parts, full)


def naive_otr_expectation(z: torch.Tensor, x: int, kappa: float, beta: float) -> torch.Tensor:
    """E_{a~softmax(z/κ)}[−R(a) log softmax(z)[a]] summed over the vocabulary one token at a time."""
    pi_prime = torch.softmax(z.detach() / kappa, dim=0)
    log_pi = torch.log_softmax(z, dim=0)
    total = 0.0
    for a in range(z.shape[0]):
        reward = 1.0 if a == x else beta
        total = total - pi_prime[a] * reward * log_pi[a]
    return total


def test_otr_exact_matches_vocabulary_sum() -> None:
    logits, labels, _ = make_batch(2)
    otr = OTRConfig(temperature=1.3, negative_reward=-0.2)
    loss, metrics = drift_loss(logits, labels, None, "otr-exact", otr=otr)
    terms = [
        naive_otr_expectation(logits[i, t - 1], int(labels[i, t]), 1.3, -0.2)
        for i in range(3)
        for t in range(1, 6)
        if labels[i, t] != IGNORE_INDEX
    ]
    naive = sum(terms) / len(terms)
    torch.testing.assert_close(loss, naive)
    torch.testing.assert_close(*(torch.autograd.grad(v, logits)[0] for v in (loss, naive)))
    assert 0 < metrics["otr_hit_rate"] < 1


def test_sampled_otr_mean_matches_exact_within_monte_carlo_error() -> None:
    torch.manual_seed(0)
    z = torch.randn(5, VOCAB, dtype=torch.float64)
    x = torch.tensor([0, 3, 6, 2, 2])
    otr = OTRConfig(num_samples=16, temperature=1.3, negative_reward=-0.1)
    exact, expected_hits = otr_exact_terms(z, x, otr)
    draws = 4000
    generator = torch.Generator().manual_seed(1)
    # every draw is one more copy of the 5 positions, so all draws run as one batch
    samples, hits = otr_sampled_terms(z.repeat(draws, 1), x.repeat(draws), otr, generator)
    samples, hits = samples.view(draws, 5), hits.view(draws, 5)
    stderr = samples.std(dim=0) / math.sqrt(draws)
    assert ((samples.mean(dim=0) - exact).abs() < 5 * stderr + 1e-12).all()
    assert ((hits.mean(dim=0) - expected_hits).abs() < 5 * hits.std(dim=0) / math.sqrt(draws)).all()
    # a test that cannot fail is a defect: a wrong κ is detected at this precision
    wrong, _ = otr_exact_terms(z, x, OTRConfig(temperature=1.0, negative_reward=-0.1))
    assert ((samples.mean(dim=0) - wrong).abs() > 5 * stderr).any()


def test_otr_with_beta_zero_kappa_one_is_dft_gradient_in_expectation() -> None:
    """β=0, κ=1: E[∇ℓ_t] = −π(x_t) ∇log π(x_t) (DFT), for the closed form exactly and the sampler on average."""
    torch.manual_seed(3)
    z = torch.randn(4, VOCAB, dtype=torch.float64, requires_grad=True)
    x = torch.tensor([1, 4, 0, 5])
    otr = OTRConfig(num_samples=8, temperature=1.0, negative_reward=0.0)

    log_px = torch.log_softmax(z, dim=-1).gather(1, x[:, None]).squeeze(1)
    dft = -(log_px.detach().exp() * log_px).sum()  # −Σ_t sg(π(x_t)) log π(x_t)
    (dft_grad,) = torch.autograd.grad(dft, z, retain_graph=True)

    (exact_grad,) = torch.autograd.grad(otr_exact_terms(z, x, otr)[0].sum(), z)
    torch.testing.assert_close(exact_grad, dft_grad)

    generator = torch.Generator().manual_seed(4)
    draws = 3000
    copies = z.detach().repeat(draws, 1, 1).requires_grad_(True)  # (draws, 4, V): one copy per draw
    terms, _ = otr_sampled_terms(copies.view(-1, VOCAB), x.repeat(draws), otr, generator)
    (grads,) = torch.autograd.grad(terms.sum(), copies)  # per-draw gradients, as rows do not interact
    stderr = grads.std(dim=0) / math.sqrt(grads.shape[0])
    assert ((grads.mean(dim=0) - dft_grad).abs() < 5 * stderr + 1e-9).all()
    sft_grad = torch.autograd.grad(-log_px.sum(), z)[0]  # plain SFT is not what OTR estimates here
    assert ((grads.mean(dim=0) - sft_grad).abs() > 5 * stderr).any()


def test_drift_otr_scales_otr_terms_by_weight() -> None:
    logits, labels, weights = make_batch(4)
    otr = OTRConfig(exact=True)
    plain, _ = drift_loss(logits, labels, None, "otr-exact", otr=otr)
    weighted, _ = drift_loss(logits, labels, weights, "drift-otr", otr=otr)
    ones, _ = drift_loss(logits, labels, torch.ones_like(weights), "drift-otr", otr=otr)
    torch.testing.assert_close(ones, plain)
    assert not torch.allclose(weighted, plain)


def test_misuse_is_reported() -> None:
    logits, labels, weights = make_batch()
    with pytest.raises(ValueError, match="unknown loss mode 'dpo'"):
        drift_loss(logits, labels, weights, "dpo")
    with pytest.raises(ValueError, match="needs per-token weights"):
        drift_loss(logits, labels, None, "wsft")
    with pytest.raises(ValueError, match=r"negative_reward \(β\) must be ≤ 0"):
        OTRConfig(negative_reward=0.5).validate()
