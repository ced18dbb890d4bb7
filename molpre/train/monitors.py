"""Collapse watch and linear-probe proxy for pretraining, on plain tensors.

Collapse statistics of embeddings (Wang & Isola 2020 for alignment/uniformity; effective
rank as in Roy & Vetterli 2007 / RankMe):

- alignment  E ||f(x) - f(x+)||^2 over positive pairs of l2-normalised embeddings (low = good)
- uniformity log E exp(-2 ||f(x) - f(y)||^2) over all pairs (near 0 = everything at one point)
- std        mean per-dimension std of l2-normalised embeddings times sqrt(D) (~1 spread, 0 collapsed)
- effective_rank exp(entropy of normalised singular values of centred embeddings) (1..D; 0 = constant)

The linear probe fits ridge regression on frozen pooled embeddings and reports the
held-out MAE; :class:`ShortcutDetector` raises when the pretraining loss keeps falling
while that MAE stalls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> float:
    """Mean ||z1n - z2n||^alpha of positive pairs; z1, z2: [B, D] (normalised inside)."""
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    return float((a - b).norm(dim=-1).pow(alpha).mean())


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log mean exp(-t ||zi - zj||^2) over pairs i < j; z: [B, D] (normalised inside)."""
    zn = F.normalize(z, dim=-1)
    if zn.shape[0] < 2:
        return 0.0
    sq = torch.pdist(zn).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - np.log(sq.numel()))


def embedding_std(z: torch.Tensor) -> float:
    """Mean per-dimension std of l2-normalised z [B, D], times sqrt(D)."""
    zn = F.normalize(z, dim=-1)
    return float(zn.std(dim=0).mean() * np.sqrt(z.shape[1]))


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """exp(Shannon entropy of the normalised singular values of centred z [B, D]).

    Returns 0.0 when the centred embeddings vanish (every input maps to one point).
    """
    z = z.double()
    centred = z - z.mean(dim=0, keepdim=True)
    scale = z.norm() + 1e-30
    if centred.norm() / scale < eps:
        return 0.0
    s = torch.linalg.svdvals(centred)
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse_stats(z1: torch.Tensor, z2: torch.Tensor | None = None) -> dict[str, float]:
    """All collapse statistics of pooled embeddings z1 [B, D] (and positives z2 [B, D])."""
    stats = {"uniformity": uniformity(z1), "std": embedding_std(z1),
             "effective_rank": effective_rank(z1)}
    if z2 is not None:
        stats["alignment"] = alignment(z1, z2)
    return stats


@dataclass
class CollapseThresholds:
    """A statistic beyond its threshold suggests collapse."""

    min_std: float = 0.05
    min_effective_rank: float = 1.5
    max_uniformity: float = -0.05

    def check(self, stats: dict[str, float]) -> list[str]:
        """Reasons (empty when healthy) for ``stats`` from :func:`collapse_stats`."""
        reasons = []
        if stats["std"] < self.min_std:
            reasons.append(f"embedding std {stats['std']:.3g} < {self.min_std}")
        if stats["effective_rank"] < self.min_effective_rank:
            reasons.append(
                f"effective rank {stats['effective_rank']:.3g} < {self.min_effective_rank}")
        if stats["uniformity"] > self.max_uniformity:
            reasons.append(f"uniformity {stats['uniformity']:.3g} > {self.max_uniformity}")
        return reasons


def ridge_probe(x: np.ndarray, y: np.ndarray, *, holdout: float = 0.2, seed: int = 0,
                alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)) -> float:
    """Held-out MAE of ridge regression y ~ x; x [n, D] embeddings, y [n] target.

    A seeded split keeps ``holdout`` of the rows aside; the ridge strength is chosen by
    efficient leave-one-out CV on the rest (scikit-learn's RidgeCV), features standardised.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, int(round(holdout * len(y))))
    test, train = order[:n_test], order[n_test:]
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
    model.fit(x[train], y[train])
    return float(np.mean(np.abs(model.predict(x[test]) - y[test])))


@dataclass
class ShortcutDetector:
    """Flags 'loss falls, probe stalls': over the last ``window`` probe evaluations the
    pretraining loss fell by more than ``loss_drop`` (relative) while the best probe MAE
    improved by less than ``probe_gain`` (relative)."""

    window: int = 4
    loss_drop: float = 0.05
    probe_gain: float = 0.01
    history: list[tuple[float, float]] = field(default_factory=list)

    def update(self, loss: float, probe_mae: float) -> str | None:
        """Record one (loss, probe MAE) pair; returns a reason when the alarm fires."""
        self.history.append((loss, probe_mae))
        if len(self.history) <= self.window:
            return None
        recent = self.history[-(self.window + 1):]
        loss_then, loss_now = recent[0][0], recent[-1][0]
        best_before = min(m for _, m in self.history[:-self.window])
        best_recent = min(m for _, m in recent[1:])
        fell = loss_now < loss_then * (1 - self.loss_drop)
        stalled = best_recent > best_before * (1 - self.probe_gain)
        if fell and stalled:
            return (f"pretraining loss fell {loss_then:.4g} -> {loss_now:.4g} while probe MAE "
                    f"stalled (best {best_before:.4g} before, {best_recent:.4g} since)")
        return None
