"""The training losses: SFT / weighted SFT (DRIFT, arXiv 2605.31455) and One-Token Rollout (OTR, arXiv 2509.26313).

Every loss here is a sum of per-token terms ℓ_{i,t} over supervised (assistant) positions, scaled by a
per-token weight w_{i,t} and divided by one explicit normaliser N::

    L = (1/N) Σ_{i,t} w_{i,t} · ℓ_{i,t}

* ``sft`` / ``rft``: w = 1, ℓ = −log π_θ(x_t | s_t)  (rft: only successful trajectories are in the data)
* ``wsft``: w = the trajectory's DRIFT weight w_i (or its per-turn weight), ℓ = −log π_θ(x_t | s_t)
* ``otr``: w = 1, ℓ = the sampled OTR term below
* ``otr-exact``: w = 1, ℓ = its closed-form expectation
* ``drift-otr``: w = w_i, ℓ = the OTR term (sampled; the closed form with ``OTRConfig(exact=True)``)

N is the number of supervised tokens in the *global* batch (all micro-batches of one optimizer step on
all data-parallel ranks; the trainer passes ``num_items_in_batch``), so the gradient does not depend
on micro-batch size, gradient accumulation or world size.

OTR (paper's symbols): at a supervised position t with logits z_t and ground-truth token x_t, draw K
tokens a_1..a_K from the sampling policy π'(·|s_t) = softmax(z_t / κ) (no gradient), give each the
reward R_j = 1 if a_j = x_t else β (β ≤ 0), and take the policy-gradient surrogate at temperature 1::

    ℓ_t = −(1/K) Σ_j sg(R_j) · log π_θ(a_j | s_t)

Its expectation over the draws is, in closed form over the vocabulary::

    E[ℓ_t] = −( π'(x_t) log π_θ(x_t) + β Σ_{a≠x_t} π'(a) log π_θ(a) )

With β = 0 and κ = 1 the gradient is −π_θ(x_t) ∇log π_θ(x_t), the DFT-style reweighted SFT gradient.
Both forms reuse the teacher-forced logits: no extra forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
LOSS_MODES = ("sft", "rft", "wsft", "otr", "otr-exact", "drift-otr")
#: the modes whose loss multiplies each token by its trajectory's weight w
WEIGHTED_MODES = ("wsft", "drift-otr")
#: the modes that add One-Token Rollout's token-level policy gradient
OTR_MODES = ("otr", "otr-exact", "drift-otr")


@dataclass(frozen=True)
class OTRConfig:
    """OTR hyper-parameters; defaults from the paper (K=256, κ=1.3) and a small negative β."""

    num_samples: int = 256  # K
    temperature: float = 1.3  # κ, temperature of the sampling policy π'
    negative_reward: float = -0.1  # β, reward of a sampled token that is not the ground truth
    exact: bool = False  # drift-otr only: use the closed-form expectation instead of sampling

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field that is out of range."""
        if self.num_samples < 1:
            raise ValueError(f"OTR num_samples (K) must be ≥ 1, got {self.num_samples}")
        if not self.temperature > 0:
            raise ValueError(f"OTR temperature (κ) must be > 0, got {self.temperature}")
        if self.negative_reward > 0:
            raise ValueError(f"OTR negative_reward (β) must be ≤ 0, got {self.negative_reward}")


def supervised_positions(
    logits: torch.Tensor,
    labels: torch.Tensor,
    token_weights: torch.Tensor | None = None,
    *,
    shift: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Shift for next-token prediction and keep only supervised positions.

    ``logits`` (B, L, V) predict ``labels`` (B, L) one step ahead; returns the flat (N, V) logits, the
    (N,) targets x_t and, when given, the (N,) token weights w_{i,t} taken at the target position.
    ``shift=False``: the caller already aligned them (``logits[:, j]`` predicts ``labels[:, j]``, the
    weights are the targets'), as when the model computed logits at the supervised positions only.
    """
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
        token_weights = token_weights[:, 1:] if token_weights is not None else None
    keep = labels != IGNORE_INDEX
    flat_weights = token_weights[keep] if token_weights is not None else None
    return logits[keep], labels[keep], flat_weights


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    # softmax over a large vocabulary in bf16/fp16 loses the small probabilities OTR samples from
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def nll_terms(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ℓ_t = −log π_θ(x_t | s_t), shape (N,)."""
    return F.cross_entropy(_upcast(logits), targets, reduction="none")


def otr_sampled_terms(
    logits: torch.Tensor, targets: torch.Tensor, config: OTRConfig, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ_t = −(1/K) Σ_j sg(R_j) log π_θ(a_j | s_t), a_j ~ softmax(z_t/κ); returns (terms (N,), hit rate (N,)).

    The hit rate is the share of the K samples equal to x_t.
    """
    log_pi = F.log_softmax(_upcast(logits), dim=-1)  # log π_θ(· | s_t), temperature 1
    with torch.no_grad():
        pi_prime = F.softmax(_upcast(logits.detach()) / config.temperature, dim=-1)  # π'
        samples = torch.multinomial(
            pi_prime, config.num_samples, replacement=True, generator=generator
        )  # a_j
        hit = samples == targets[:, None]
        rewards = torch.where(hit, 1.0, config.negative_reward)  # R_j
    terms = -(rewards * log_pi.gather(1, samples)).mean(dim=1)
    return terms, hit.float().mean(dim=1)


def otr_exact_terms(
    logits: torch.Tensor, targets: torch.Tensor, config: OTRConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """E[ℓ_t] = −( π'(x_t) log π_θ(x_t) + β Σ_{a≠x_t} π'(a) log π_θ(a) ); returns (terms, π'(x_t)).

    π'(x_t) is the expected hit rate of the sampled form.
    """
    log_pi = F.log_softmax(_upcast(logits), dim=-1)
    with torch.no_grad():
        pi_prime = F.softmax(_upcast(logits.detach()) / config.temperature, dim=-1)
        rewards = torch.full_like(pi_prime, config.negative_reward)
        rewards.scatter_(1, targets[:, None], 1.0)  # R(a) = 1 for a = x_t, β otherwise
    terms = -(pi_prime * rewards * log_pi).sum(dim=1)
    return terms, pi_prime.gather(1, targets[:, None]).squeeze(1)


def drift_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    token_weights: torch.Tensor | None,
    mode: str,
    normaliser: float | torch.Tensor | None = None,
    otr: OTRConfig | None = None,
    generator: torch.Generator | None = None,
    *,
    shift: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """L = (1/N) Σ_{i,t} w_{i,t} ℓ_{i,t} for ``mode`` in :data:`LOSS_MODES`.

    ``token_weights`` (B, L) carries w at each token (ignored for sft/rft/otr/otr-exact, where w = 1).
    ``normaliser`` is N; ``None`` uses this batch's supervised-token count. Returns the loss and
    detached metrics for logging (``otr_hit_rate`` for the OTR modes). ``shift=False`` takes logits
    already aligned with their targets (see :func:`supervised_positions`).
    """
    if mode not in LOSS_MODES:
        raise ValueError(f"unknown loss mode {mode!r}; expected one of {LOSS_MODES}")
    weighted = mode in WEIGHTED_MODES
    if weighted and token_weights is None:
        raise ValueError(f"loss mode {mode!r} needs per-token weights (a `weight` field in the data)")
    flat_logits, targets, weights = supervised_positions(
        logits, labels, token_weights if weighted else None, shift=shift
    )
    metrics: dict[str, float] = {}
    if mode in ("sft", "rft", "wsft"):
        terms = nll_terms(flat_logits, targets)
    else:
        otr = otr or OTRConfig()
        if mode == "otr-exact" or (mode == "drift-otr" and otr.exact):
            terms, hits = otr_exact_terms(flat_logits, targets, otr)
        else:
            terms, hits = otr_sampled_terms(flat_logits, targets, otr, generator)
        if hits.numel():
            metrics["otr_hit_rate"] = float(hits.mean())
    if weights is not None:
        terms = terms * weights.to(terms.dtype)
    if normaliser is None:
        normaliser = max(int(targets.numel()), 1)
    return terms.sum() / normaliser, metrics
