"""Statistics of a study: intervals over seeds, paired differences, verdicts, label savings.

Errors are test MAEs (any unit, e.g. kcal/mol) indexed by seed. With few seeds a plain
percentile bootstrap of the mean covers the truth well below its nominal rate, so intervals
use Hesterberg's *expanded* percentile bootstrap: the percentile level is widened so that
its normal quantile equals ``sqrt(n / (n - 1)) * t_{n-1}``. No bootstrap interval can be
wider than the range of its values, and the range of n values misses the mean with
probability ``2 / 2**n`` (25% at n = 3, 6% at n = 5), so below ``MIN_BOOTSTRAP`` values the
Student-t interval is used instead (``Interval.method`` says which).

Paired differences are ``arm - reference`` on the same seed (same labels), so a negative
difference means the arm has the lower error. The exact sign-flip permutation test gives the
p-value (with n seeds the smallest two-sided p is ``2 / 2**n``: 0.0625 at n = 5, so the
verdict reads the interval, and the p-value is reported beside it).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

MIN_BOOTSTRAP = 6  # fewer values: Student-t interval (see the module docstring)
GAIN, NO_EFFECT, NEGATIVE = "gain", "no detectable effect", "negative transfer"


@dataclass(frozen=True)
class Interval:
    """A mean with its interval: ``mean`` and ``[low, high]`` at ``level``, over ``n`` values."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95
    method: str = "bootstrap"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _expanded_quantiles(n: int, level: float) -> tuple[float, float]:
    """Percentiles (0-100) of the expanded percentile bootstrap for ``n`` values."""
    alpha = 1.0 - level
    if n < 2:
        return 100 * alpha / 2, 100 * (1 - alpha / 2)
    z = np.sqrt(n / (n - 1)) * sps.t.ppf(1 - alpha / 2, n - 1)
    tail = float(sps.norm.sf(z))
    return 100 * tail, 100 * (1 - tail)


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means ``[n_boot]`` of resamples (with replacement) of ``values`` [n]."""
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return values[idx].mean(axis=1)


def bootstrap_ci(values: Sequence[float], level: float = 0.95, n_boot: int = 4000,
                 seed: int = 0) -> Interval:
    """Mean of ``values`` [n] with an expanded-percentile bootstrap interval (see module doc);
    the Student-t interval below ``MIN_BOOTSTRAP`` values.

    One value gives a zero-width interval at that value (nothing is known of its spread).
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    mean = float(x.mean())
    if x.size == 1 or np.ptp(x) == 0:
        return Interval(mean, mean, mean, int(x.size), level, "none")
    if x.size < MIN_BOOTSTRAP:
        half = sps.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
        return Interval(mean, mean - half, mean + half, int(x.size), level, "t")
    means = bootstrap_means(x, n_boot, np.random.default_rng(seed))
    lo_q, hi_q = _expanded_quantiles(x.size, level)
    low, high = np.percentile(means, [lo_q, hi_q])
    return Interval(mean, float(low), float(high), int(x.size), level)


def sign_flip_pvalue(diffs: Sequence[float], n_random: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of mean(diffs) = 0 by flipping signs (exact up to 16 values)."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0 or np.allclose(d, 0):
        return 1.0
    observed = abs(d.mean())
    if d.size <= 16:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=d.size)))
    else:
        signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(n_random, d.size))
    null = np.abs((signs * d).mean(axis=1))
    return float(np.mean(null >= observed - 1e-12))


@dataclass(frozen=True)
class PairedDifference:
    """``arm - reference`` per seed: the interval of the mean difference and its p-value."""

    interval: Interval
    p_value: float
    seeds: tuple[int, ...]

    def as_dict(self) -> dict:
        return {**self.interval.as_dict(), "p_value": self.p_value, "seeds": list(self.seeds)}


def paired_difference(arm: Mapping[int, float], reference: Mapping[int, float],
                      level: float = 0.95, seed: int = 0) -> PairedDifference | None:
    """Paired difference on the seeds both have (None when fewer than 2 are shared)."""
    shared = tuple(sorted(set(arm) & set(reference)))
    if len(shared) < 2:
        return None
    d = np.array([arm[s] - reference[s] for s in shared], dtype=float)
    return PairedDifference(bootstrap_ci(d, level, seed=seed), sign_flip_pvalue(d, seed=seed),
                            shared)


def direction(diff: PairedDifference | None) -> str:
    """``gain`` when the interval of arm - reference lies below 0, ``negative transfer``
    when above 0, else ``no detectable effect``."""
    if diff is None:
        return NO_EFFECT
    if diff.interval.high < 0:
        return GAIN
    if diff.interval.low > 0:
        return NEGATIVE
    return NO_EFFECT


def verdict(vs_scratch: PairedDifference | None,
            vs_control: PairedDifference | None = None, taught: bool = False) -> tuple[str, str]:
    """The verdict of a pretrained arm at one budget, with a one-line reason.

    ``negative transfer``: worse than scratch (interval above 0). ``gain``: better than
    scratch and, when a control was run, better than the control too (a gain the untrained
    encoder also shows is a difference in starting weights, not pretraining). ``taught``:
    the references are the taught scratch and the taught control, and the reason says so.
    """
    s, c = ("the taught scratch", "the taught random-init control") if taught else \
        ("scratch", "the random-init control")
    if vs_scratch is None:
        return NO_EFFECT, (f"fewer than 2 seeds where both this arm and {s} finished ({s} "
                           "not run at this budget, or failed: see failed)")
    scratch = direction(vs_scratch)
    if scratch == NEGATIVE:
        return NEGATIVE, f"worse than {s} (95% interval of the paired difference > 0)"
    if scratch != GAIN:
        return NO_EFFECT, f"the 95% interval of the difference to {s} includes 0"
    if vs_control is None:
        return GAIN, f"better than {s} (no control arm run)"
    if direction(vs_control) == GAIN:
        return GAIN, f"better than {s} and than {c}"
    return NO_EFFECT, f"better than {s}, but not than {c}"


@dataclass(frozen=True)
class PowerLaw:
    """``error = a * N**-b`` fitted in log-log space."""

    a: float
    b: float

    def error(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.a * np.asarray(n, dtype=float) ** -self.b

    def labels_for(self, error: float) -> float:
        """N at which this curve reaches ``error`` (inf when the curve does not fall)."""
        if self.b <= 0 or error <= 0:
            return float("inf")
        return float((self.a / error) ** (1.0 / self.b))


def fit_power_law(budgets: Sequence[float], errors: Sequence[float]) -> PowerLaw:
    """Least-squares line through (log N, log error) of every (budget, seed) point."""
    n, e = np.asarray(budgets, dtype=float), np.asarray(errors, dtype=float)
    if len(set(n.tolist())) < 2:
        raise ValueError("a power-law fit needs errors at two or more budgets")
    slope, intercept = np.polyfit(np.log(n), np.log(e), 1)
    return PowerLaw(float(np.exp(intercept)), float(-slope))


Curve = Mapping[int, Mapping[int, float]]  # budget -> seed -> error


def _points(curve: Curve) -> tuple[list[float], list[float]]:
    budgets, errors = [], []
    for n, by_seed in curve.items():
        budgets += [n] * len(by_seed)
        errors += list(by_seed.values())
    return budgets, errors


def _resample(curve: Curve, rng: np.random.Generator) -> dict[int, dict[int, float]]:
    """Seeds resampled with replacement within each budget."""
    out = {}
    for n, by_seed in curve.items():
        values = np.array(list(by_seed.values()))
        out[n] = dict(enumerate(values[rng.integers(0, len(values), len(values))]))
    return out


def _saving(scratch: Curve, arm: Curve, budget: int) -> float:
    law = fit_power_law(*_points(scratch))
    return law.labels_for(float(np.mean(list(arm[budget].values()))))


def label_savings(scratch: Curve, arm: Curve, budget: int, level: float = 0.95,
                  n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Labels scratch needs to reach the arm's mean error at ``budget``, with an interval.

    Scratch's curve is the power law through its (budget, seed) errors; the interval comes
    from resampling seeds within each budget of both arms. Returns ``labels``, ``low``,
    ``high`` and ``ratio`` (= labels / budget; > 1 means the arm saves labels).
    """
    labels = _saving(scratch, arm, budget)
    rng = np.random.default_rng(seed)
    boot = [_saving(_resample(scratch, rng), _resample(arm, rng), budget) for _ in range(n_boot)]
    alpha = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(boot), [alpha, 100 - alpha])
    return {"budget": budget, "labels": labels, "low": float(low), "high": float(high),
            "ratio": labels / budget, "ratio_low": float(low) / budget,
            "ratio_high": float(high) / budget}
