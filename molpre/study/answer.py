"""A study's answer in a few fields, for the places a user looks first: the MLflow runs table
(the parent's short-named metrics and tags) and the parent run's description.

The answer is read at the study's largest budget: the **best arm** (lowest mean test MAE
over seeds, baselines included) with its 95% interval; the **pretrained arm** (the best
``encoder:mode`` arm, not a control) with its verdict against scratch and its label savings.
Numbers are rounded for display (:func:`rounded`: 4 significant digits); the unrounded values
stay in summary.json and the parent's long-named metrics.
"""

from __future__ import annotations

import math
from typing import Any

from molpre.study.plan import scratch_of

#: The parent's short-named metrics besides the headline MAE (a column each in the study's
#: runs view, which sorts metric columns by name: ``mae_kcal``, ``mae_kcal_lo``,
#: ``mae_kcal_up``, ``savings_x``): the 95% interval's ends and the label savings.
LOW, HIGH, SAVINGS = "_lo", "_up", "savings_x"
#: The parent's short-named tags.
VERDICT, BEST_ARM, ANSWER = "verdict", "best_arm", "answer"


def rounded(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (17.698615 -> 17.7; NaN stays NaN)."""
    if value is None or not math.isfinite(value):
        return float("nan") if value is None else value
    return float(f"{value:.{digits}g}")


def headline_metric(spec) -> str:
    """The short name of a run's rounded headline error: ``mae_kcal`` for the energy,
    ``mae_gap_mev`` for the gap (the test MAE in the target's headline unit)."""
    return spec.metric_name("mae", "", spec.headline[0])


def _cell(summary: dict, arm: str, budget: str) -> dict | None:
    cell = summary["table"].get(arm, {}).get(budget)
    return cell if cell and cell.get("n") else None


def is_pretrained(arm: str) -> bool:
    """``encoder:mode`` arms, not their controls nor scratch or the baselines."""
    return ":" in arm and ":control-" not in arm


def answer(summary: dict) -> dict[str, Any]:
    """The study's answer at its largest budget (see the module docstring): ``budget``,
    ``best_arm`` and ``best`` (its table cell: mean, low, high), ``arm`` (the pretrained arm,
    None without encoders), ``verdict``, ``reason``, ``savings`` (a label-savings dict or
    None) and ``text`` (one line)."""
    budget = str(max(int(b) for b in summary["budgets"]))
    cells = {arm: _cell(summary, arm, budget) for arm in summary["table"]}
    scored = {arm: c for arm, c in cells.items() if c is not None}
    best_arm = min(scored, key=lambda a: scored[a]["mean"]) if scored else None
    pretrained = [a for a in summary["comparisons"] if budget in summary["comparisons"][a]]
    ranked = sorted(pretrained, key=lambda a: (scored[a]["mean"] if a in scored else math.inf))
    arm = ranked[0] if ranked else None
    comparison = summary["comparisons"][arm][budget] if arm else {}
    savings = (summary.get("savings") or {}).get(arm or "", {}).get(budget)
    out = {"budget": int(budget), "best_arm": best_arm,
           "best": scored.get(best_arm) if best_arm else None, "arm": arm,
           "verdict": comparison.get("verdict", "no pretrained arm"),
           "reason": comparison.get("reason", ""), "savings": savings}
    out["text"] = answer_line(out, summary["unit"])
    return out


def answer_line(result: dict, unit: str) -> str:
    """``N=1000: qm9:full: gain vs scratch, saves 2.8x labels (1.9 to 4.1x); best arm
    qm9:full 4.21 (3.98 to 4.44) kcal/mol``."""
    parts = [f"N={result['budget']}:"]
    if result["arm"]:
        parts.append(f"{result['arm']}: {result['verdict']} vs {scratch_of(result['arm'])}")
        s = result["savings"]
        if s and math.isfinite(s.get("ratio", math.nan)):
            parts[-1] += (f", saves {rounded(s['ratio'], 3):g}x labels "
                          f"({rounded(s['ratio_low'], 3):g} to {rounded(s['ratio_high'], 3):g}x)")
        parts[-1] += ";"
    best = result["best"]
    if best:
        parts.append(f"best arm {result['best_arm']} {interval(best)} {unit}")
    else:
        parts.append("no arm finished without failing")
    return " ".join(parts)


def interval(cell: dict) -> str:
    """``4.21 (3.98 to 4.44)``: a mean and its 95% interval, rounded."""
    return f"{rounded(cell['mean']):g} ({rounded(cell['low']):g} to {rounded(cell['high']):g})"


def parent_fields(summary: dict, spec) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags) that put the answer in the runs table: the best arm's rounded mean
    under the children's headline column (``mae_kcal``), its interval (``mae_kcal_lo``,
    ``mae_kcal_up``), ``savings_x``; tags ``verdict``, ``best_arm`` and ``answer``."""
    result = answer(summary)
    metrics, tags = {}, {VERDICT: result["verdict"], ANSWER: result["text"]}
    if result["best"]:
        best = result["best"]
        name = headline_metric(spec)
        metrics.update({name: rounded(best["mean"]), name + LOW: rounded(best["low"]),
                        name + HIGH: rounded(best["high"])})
        tags[BEST_ARM] = result["best_arm"]
    savings = result["savings"]
    if savings and math.isfinite(savings.get("ratio", math.nan)):
        metrics[SAVINGS] = rounded(savings["ratio"], 3)
    if result["arm"]:
        tags[VERDICT] = f"{result['verdict']} ({result['arm']})"
    return metrics, tags


def description(summary: dict) -> str:
    """The parent run's description (``mlflow.note.content``), written for MLflow's markdown
    view: no headings (its large type overlaps), no ``[a, b]`` (read as links), the table as
    fixed-width text (its table style runs columns together); report.md and report.html
    keep the full report."""
    result, unit = answer(summary), summary["unit"]
    lines = [f"**Study {summary['name']}**: {summary['target']}, test MAE ({unit}), mean and "
             f"95% interval over seeds; {summary['n_test']} test molecules "
             f"({summary['split']}).", "", f"**Answer.** {result['text']}", "",
             "```", *text_table(summary), "```", ""]
    verdicts = [(arm, b, c) for arm, by_b in summary["comparisons"].items()
                for b, c in by_b.items()]
    if verdicts:
        lines.append(f"**Verdicts** (paired differences to scratch, {unit}):")
        lines += [f"- {arm} N={b}: **{c['verdict']}**, {c['reason']}" for arm, b, c in verdicts]
        lines.append("")
    if summary["failed"]:
        lines.append(f"{len(summary['failed'])} children failed and are left out of the means "
                     "(listed in report.md).")
    lines.append("Full report with the learning curves: artifacts report.html and report.md.")
    return "\n".join(lines) + "\n"


def text_table(summary: dict) -> list[str]:
    """One line per arm, one column per budget: ``mean (low to high)``, or ``- (k failed)``."""
    budgets = [str(b) for b in summary["budgets"]]
    rows = [["arm", *[f"N={b}" for b in budgets]]]
    for arm, by_b in summary["table"].items():
        cells = []
        for b in budgets:
            cell = by_b.get(b)
            if cell and cell.get("n"):
                cells.append(interval(cell) + (f", {cell['failed']} failed"
                                               if cell.get("failed") else ""))
            else:
                cells.append(f"- ({cell.get('failed', 0)} failed)" if cell else "-")
        rows.append([arm, *cells])
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
