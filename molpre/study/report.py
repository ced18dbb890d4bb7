"""A study's answer: statistics over the child records, the learning-curve figure, and
``summary.json`` / ``report.md`` / ``report.html`` (figure inline) on the parent run.

Errors are test MAEs in the target's headline unit (kcal/mol for energies, meV for the
gap, Debye for the dipole: ``summary["unit"]``). Failed children are listed and left out of
every mean.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import numpy as np

from molpre.study import stats
from molpre.study.answer import description, parent_fields
from molpre.study.plan import TAUGHT, scratch_of
from molpre.study.records import metric_name

#: Baseline arms (drawn dashed in the figure): the kinds' priors and KRR.
BASELINE_ARMS = ("linear", "mean", "krr")


def curves(records: list[dict]) -> dict[str, dict[int, dict[int, float]]]:
    """``{arm: {budget: {seed: test MAE}}}`` of the children that did not fail."""
    out: dict = {}
    for r in records:
        if not r["failed"] and r["test_mae"] is not None and np.isfinite(r["test_mae"]):
            out.setdefault(r["arm"], {}).setdefault(r["budget"], {})[r["seed"]] = r["test_mae"]
    return out


def arm_table(records: list[dict]) -> dict[str, dict[int, dict]]:
    """Per arm and budget: mean and 95% interval over seeds, and the failed count."""
    table: dict = {}
    for arm, by_budget in curves(records).items():
        for budget, by_seed in by_budget.items():
            ci = stats.bootstrap_ci(list(by_seed.values()))
            table.setdefault(arm, {})[budget] = {**ci.as_dict(), "seeds": by_seed, "failed": 0}
    for r in records:
        if r["failed"]:
            cell = table.setdefault(r["arm"], {}).setdefault(r["budget"], {"n": 0, "seeds": {}})
            cell["failed"] = cell.get("failed", 0) + 1
    return table


def failures(records: list[dict]) -> dict[tuple[str, int], tuple[int, int, int]]:
    """``{(arm, budget): (failed, diverged, total)}`` children (diverged: a non-finite MAE)."""
    out: dict = {}
    for r in records:
        f, d, n = out.get((r["arm"], r["budget"]), (0, 0, 0))
        mae = r["test_mae"]
        diverged = mae is None or not np.isfinite(mae)
        out[(r["arm"], r["budget"])] = (f + bool(r["failed"]), d + diverged, n + 1)
    return out


def _fails_more(fails: dict, arm: str, budget: int) -> str | None:
    """A reason when ``arm`` diverges (non-finite error) or fails on at least half its seeds,
    more often than its scratch (:func:`scratch_of`) does.

    Failed children are left out of the means (a broken scratch seed must not fake a gain),
    so without this an initialization that breaks training would show no paired
    difference at all instead of negative transfer.
    """
    f, d, n = fails.get((arm, budget), (0, 0, 0))
    fs, ds, ns = fails.get((scratch_of(arm), budget), (0, 0, 0))
    if not (n and ns):
        return None
    if d * 2 >= n and d > ds:
        return f"diverges (non-finite test error) on {d} of {n} seeds; scratch on {ds} of {ns}"
    if f * 2 >= n and f > fs:
        return (f"fails (not better than the per-element baseline) on {f} of {n} seeds; "
                f"scratch on {fs} of {ns}")
    return None


def comparisons(records: list[dict], control_of: dict[str, str] | None = None
                ) -> dict[str, dict[int, dict]]:
    """Pretrained arms (``enc:mode``): paired differences vs scratch and vs their control
    (``enc:control-mode``, or ``other:control-mode`` when ``control_of[enc] == other``), on
    the seeds where neither child failed, and a verdict per budget. A taught arm
    (``enc:mode+taught``) is compared with the taught scratch and the taught control."""
    control_of = control_of or {}
    data = curves(records)
    fails = failures(records)
    arms_budgets: dict = {}
    for r in records:
        arms_budgets.setdefault(r["arm"], set()).add(r["budget"])
    out: dict = {}
    for arm, budgets in arms_budgets.items():
        if ":" not in arm or ":control-" in arm:
            continue
        enc, mode = arm.split(":", 1)
        control = data.get(f"{control_of.get(enc, enc)}:control-{mode}", {})
        for budget in sorted(budgets):
            by_seed = data.get(arm, {}).get(budget, {})
            vs_s = stats.paired_difference(by_seed, data.get(scratch_of(arm), {}).get(budget, {}))
            vs_c = stats.paired_difference(by_seed, control.get(budget, {}))
            label, reason = stats.verdict(vs_s, vs_c, taught=arm.endswith(TAUGHT))
            broken = _fails_more(fails, arm, budget)
            if broken:
                label, reason = stats.NEGATIVE, broken
            out.setdefault(arm, {})[budget] = {
                "vs_scratch": vs_s.as_dict() if vs_s else None,
                "vs_control": vs_c.as_dict() if vs_c else None,
                "verdict": label, "reason": reason}
    return out


def teaching(records: list[dict]) -> dict[str, dict[int, dict]]:
    """Each taught arm minus its own untaught arm, paired by seed, per budget:
    ``{arm: {budget: PairedDifference dict}}`` (what the teacher's labels added)."""
    data = curves(records)
    out: dict = {}
    for arm, by_budget in data.items():
        if not arm.endswith(TAUGHT):
            continue
        base = data.get(arm[:-len(TAUGHT)], {})
        for budget, by_seed in sorted(by_budget.items()):
            diff = stats.paired_difference(by_seed, base.get(budget, {}))
            if diff is not None:
                out.setdefault(arm, {})[budget] = diff.as_dict()
    return out


def savings(records: list[dict]) -> tuple[dict, dict]:
    """(label savings per arm and budget, power law per arm) against scratch's curve; only
    at budgets where scratch has counted seeds (elsewhere its curve would be extrapolated,
    and the arm's own comparison with scratch is missing too)."""
    data = curves(records)
    laws, saved = {}, {}
    for arm, by_budget in data.items():
        if len(by_budget) >= 2:
            law = stats.fit_power_law(*stats._points(by_budget))
            laws[arm] = {"a": law.a, "b": law.b}
    scratch = data.get("scratch", {})
    if len(scratch) < 2:
        return saved, laws
    for arm, by_budget in data.items():
        if arm == "scratch":
            continue
        saved[arm] = {b: stats.label_savings(scratch, by_budget, b, n_boot=500)
                      for b in sorted(by_budget) if b in scratch}
    return saved, laws


def _fmt(cell: dict | None) -> str:
    if not cell or not cell.get("n"):
        return f"- ({cell.get('failed', 0)} failed)" if cell else "-"
    text = f"{cell['mean']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}] (n={cell['n']})"
    return text + (f", {cell['failed']} failed" if cell.get("failed") else "")


def _delta_lines(delta: dict) -> list[str]:
    """The report's statement of a delta study (none for a plain one)."""
    if not delta.get("data"):
        return []
    scale = "fitted per child on its training labels" if delta.get("scale") is None \
        else f"fixed at {delta['scale']:g}"
    return [f"Delta learning: every arm, baselines included, learns the target minus s x the "
            f"{delta.get('level', 'cheap')} energy (s {scale}; cheap energies from "
            f"{', '.join(delta['data'])}) and is scored on the target. Each prediction needs "
            "that cheap calculation.", ""]


def _savings_lines(summary: dict) -> list[str]:
    """The report's label-savings table, or one line saying why there is none."""
    head = ["", "## Label savings (labels scratch needs for the arm's error, 95% interval)", ""]
    if summary["savings"]:
        lines = head + ["| arm | N | scratch labels | ratio |", "|---|---|---|---|"]
        for arm, by_b in summary["savings"].items():
            for b, s in by_b.items():
                lines.append(f"| {arm} | {b} | {s['labels']:.0f} [{s['low']:.0f}, {s['high']:.0f}] "
                             f"| {s['ratio']:.2f}x |")
        return lines
    if len(summary["table"]) < 2:
        return []
    scratch = summary["table"].get("scratch")
    if scratch is None:
        why = "the study has no scratch arm, whose learning curve defines them"
    else:
        counted = sum(1 for cell in scratch.values() if cell and cell.get("n"))
        if counted >= 2:  # no other arm shares a budget with scratch: nothing to say
            return []
        why = (f"scratch has results at {counted} budget{'s' if counted != 1 else ''}; the power "
               "law that turns an error into scratch's labels needs at least two")
    return head + [f"Not computed: {why}."]


def _teaching_lines(taught: dict, unit: str) -> list[str]:
    """The taught arms against their own untaught arms (empty without taught arms)."""
    if not taught:
        return []
    lines = ["", f"## Taught arms minus their untaught arm (paired by seed, {unit})", "",
             "A taught arm trains on its N labels plus its teacher's labels of the unlabeled "
             "pool (molpre.study.teaching); its verdict above compares it with the taught "
             "scratch and the taught control.", "",
             "| arm | N | taught - untaught [95%] p |", "|---|---|---|"]
    for arm, by_b in taught.items():
        for b, x in by_b.items():
            lines.append(f"| {arm} | {b} | {x['mean']:+.2f} [{x['low']:+.2f}, {x['high']:+.2f}] "
                         f"p={x['p_value']:.3f} |")
    return lines


def _extra_lines(extra: dict) -> list[str]:
    """Where the taught arms' extra molecules came from and what the audit dropped."""
    if not extra:
        return []
    return ["", f"Extra molecules for the teachers (teach.extra, {extra['source']}): "
            f"{extra['used']} used of {extra['given']} given; dropped as a study molecule "
            f"(InChIKey block) {extra['in_study']}, unreadable {extra['unreadable']}, "
            f"repeated {extra['repeated']}."]


def markdown(summary: dict) -> str:
    """The short report: table, verdicts, savings, audit, failures."""
    table, budgets = summary["table"], summary["budgets"]
    arms = list(table)
    unit = summary["unit"]
    lines = [f"# Study {summary['name']}: {summary['target']}, test MAE ({unit}), mean [95% interval]",
             "", f"Parent run `{summary['parent_run_id']}`; test set {summary['n_test']} molecules "
             f"({summary['split']}).", "", *_delta_lines(summary.get("delta") or {}),
             "| N | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
    for b in budgets:
        lines.append(f"| {b} | " + " | ".join(_fmt(table[a].get(b) or table[a].get(str(b)))
                                               for a in arms) + " |")
    lines += ["", f"## Verdicts (paired differences, arm - reference, {unit})", "",
              "| arm | N | vs scratch [95%] p | vs control [95%] p | verdict |", "|---|---|---|---|---|"]
    for arm, by_b in summary["comparisons"].items():
        for b, c in by_b.items():
            def d(x):
                return f"{x['mean']:+.2f} [{x['low']:+.2f}, {x['high']:+.2f}] p={x['p_value']:.3f}" if x else "-"
            lines.append(f"| {arm} | {b} | {d(c['vs_scratch'])} | {d(c['vs_control'])} | "
                         f"**{c['verdict']}** ({c['reason']}) |")
    lines += _teaching_lines(summary.get("teaching") or {}, unit)
    lines += _extra_lines(summary.get("teach_extra") or {})
    lines += _savings_lines(summary)
    for enc, a in summary["audit"].items():
        if "counts" in a:
            read = (f"; the run read mol_index < {a['corpus_limit']}" if a.get("corpus_limit") else "")
            lines += ["", f"## Contamination audit: {enc} corpus ({a['n_corpus']} molecules{read}) vs test",
                      "", "| level | overlapping test molecules | fraction |", "|---|---|---|"]
            lines += [f"| {k} | {a['counts'][k]} | {a['fractions'][k]:.2%} |" for k in a["counts"]]
        if a.get("probe"):
            lines.append(f"\nProbe set {a['probe']['data']}: {a['probe']['n']} molecules, "
                         f"{a['probe']['leaked']} in the test split.")
    lines += probe_lines(summary.get("probes") or {}, unit)
    if summary["failed"]:
        lines += ["", "## Failed children (excluded from the means)", ""]
        lines += [f"- {f['arm']} N={f['budget']} seed={f['seed']} (run {f['run_id']}): {f['reason']}"
                  for f in summary["failed"]]
    return "\n".join(lines) + "\n"


def probe_lines(probes: dict, unit: str = "kcal/mol") -> list[str]:
    """The report's probe section: frozen-embedding probes per encoder (and its init), in
    ``unit`` (the study's)."""
    if "error" in probes:
        return ["", f"Embedding probes could not run: {probes['error']}"]
    if not probes:
        return []
    first = next(iter(probes.values()))
    slug = first.get("unit_slug", "kcal")
    lines = ["", f"## Frozen-embedding probes: test MAE ({unit}), fit on {first['n_train']} "
             f"training-pool molecules, {first['n_test']} test molecules", "",
             "Summed atom features + element counts of the frozen encoder, after the "
             "target's baseline; `name:init` is the same architecture at the pretraining run's "
             "initial weights. L1 dims: embedding dimensions the sparse probe keeps.", "",
             "| encoder | baseline only | ridge | L1 (Lasso) | L1 dims |", "|---|---|---|---|---|"]
    for name, p in probes.items():
        lines.append(f"| {name} | {p[f'atomref_test_mae_{slug}']:.2f} "
                     f"| {p[f'ridge_test_mae_{slug}']:.2f} | {p[f'lasso_test_mae_{slug}']:.2f} "
                     f"| {p['lasso_nonzero_dims']} of {p['dims']} |")
    return lines


def figure(summary: dict, path: Path) -> Path:
    """Log-log learning curves: mean and 95% interval per arm, power-law fits dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for i, (arm, by_b) in enumerate(summary["table"].items()):
        pts = sorted((int(b), c) for b, c in by_b.items() if c.get("n"))
        if not pts:
            continue
        x = np.array([b for b, _ in pts], dtype=float) * (1 + 0.02 * (i - 2))  # dodge
        y = np.array([c["mean"] for _, c in pts])
        err = np.array([[c["mean"] - c["low"] for _, c in pts], [c["high"] - c["mean"] for _, c in pts]])
        style = "s--" if arm in BASELINE_ARMS else "o-"
        line = ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=arm, ms=4)
        law = summary["power_law"].get(arm)
        if law:
            grid = np.geomspace(min(x), max(x), 50)
            ax.plot(grid, law["a"] * grid ** -law["b"], ":", color=line[0].get_color(), lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training labels N")
    ax.set_ylabel(f"test MAE ({summary['unit']})")
    ax.set_title(f"study {summary['name']}: {summary['target']} learning curves\n"
                 f"(mean, 95% interval over seeds; dotted: power-law fits)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def to_html(md: str, png: Path) -> str:
    """A self-contained HTML page: the markdown tables as HTML, the figure inline (base64)."""
    body, in_table = [], False
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c).replace('**', '')}</{tag}>"
                                         for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    image = base64.b64encode(png.read_bytes()).decode()
    body.insert(1, f'<img alt="learning curves" src="data:image/png;base64,{image}"/>')
    style = ("body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:"
             "collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>study report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


def _parent_metrics(summary: dict) -> tuple[dict[str, float], dict[str, str]]:
    metrics, tags = {}, {}
    name = summary["metric"]  # test_mae_kcal (energy), test_mae_gap_mev, ...
    for arm, by_b in summary["table"].items():
        for b, c in by_b.items():
            if c.get("n"):
                for k in ("mean", "low", "high"):
                    metrics[metric_name(name, arm, f"N{b}", k)] = c[k]
            metrics[metric_name("failed", arm, f"N{b}")] = c.get("failed", 0)
    for arm, by_b in summary["savings"].items():
        for b, s in by_b.items():
            if np.isfinite(s["ratio"]):
                metrics[metric_name("label_savings_ratio", arm, f"N{b}")] = s["ratio"]
    for arm, by_b in summary["comparisons"].items():
        for b, c in by_b.items():
            tags[metric_name("verdict", arm, f"N{b}")] = c["verdict"]
    for enc, a in summary["audit"].items():
        for level, n in a.get("counts", {}).items():
            metrics[metric_name("audit", enc, f"{level}_overlap")] = n
            metrics[metric_name("audit", enc, f"{level}_overlap_fraction")] = a["fractions"][level]
    for name, p in (summary.get("probes") or {}).items():
        if isinstance(p, dict):
            slug = p.get("unit_slug", "kcal")
            for probe in ("atomref", "ridge", "lasso"):
                metrics[metric_name(f"probe_test_mae_{slug}", name, probe)] = \
                    p[f"{probe}_test_mae_{slug}"]
            metrics[metric_name("probe_lasso_dims", name)] = p["lasso_nonzero_dims"]
    return metrics, tags


def _delta_summary(config, records: list[dict]) -> dict:
    """The delta spec and the cheap level (read from the children's tags), or {}."""
    if not config.delta.enabled:
        return {}
    levels = {r.get("delta_level") for r in records if r.get("delta_level")}
    return {"data": list(config.delta.data), "scale": config.delta.scale,
            "level": ", ".join(sorted(levels)) or "cheap"}


def _teach_extra(out: Path) -> dict:
    """The audit counts of the study's extra molecules (OUT/teach-extra.json; {} without)."""
    from molpre.study.teach_extra import AUDIT_FILE

    path = out / AUDIT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def finish_report(config, parent: str, records: list[dict], encoders: dict, audit: dict,
                  data, test_ids: Path, probes: dict | None = None) -> tuple[dict, list[Path]]:
    """Compute the summary, write the artifacts to OUT and log them on the parent run."""
    import mlflow

    from molpre.study.audit_step import clean_vs_overlap
    from molpre.study.plan import read_test_rows
    from molpre.targets import get_target

    out = Path(config.out)
    spec = get_target(config.target, config.unit)
    unit = spec.headline[0]
    saved, laws = savings(records)
    summary = {
        "name": config.name, "parent_run_id": parent, "target": config.target, "unit": unit,
        "metric": spec.metric_name("mae", "test_", unit),
        "data": config.data, "split": f"{config.split.kind}, seed {config.split.seed}",
        "n_test": len(read_test_rows(test_ids, data)),
        "budgets": sorted(set(config.budgets) | {int(r["budget"]) for r in records}),
        "table": arm_table(records),
        "comparisons": comparisons(records, {e.name: e.control_of for e in config.encoders
                                             if e.control_of}),
        "teaching": teaching(records),
        "teach_extra": _teach_extra(out),
        "savings": saved,
        "power_law": laws,
        "failed": [{"arm": r["arm"], "budget": r["budget"], "seed": r["seed"],
                    "run_id": r["run_id"], "reason": r["failure_reason"]} for r in records if r["failed"]],
        "audit": {k: {kk: vv for kk, vv in v.items() if kk != "overlap"} for k, v in audit.items()},
        "clean_vs_overlap": clean_vs_overlap(records, audit),
        "encoders": {k: {"path": str(e.encoder_path), "run_id": e.run_id, "model_uri": e.model_uri,
                         "control": str(e.control_path) if e.control_path else None,
                         "pretrain_seed": e.seed, "weights_moved_from_init": e.relative_change}
                     for k, e in encoders.items()},
        "probes": probes or {},
        "delta": _delta_summary(config, records),
        "children": records,
    }
    summary = json.loads(json.dumps(summary, default=float))  # int budget keys -> str
    paths = [out / "summary.json", out / "report.md", out / "learning_curve.png", out / "report.html"]
    paths += [out / f for f in ("teach-extra.json",) if (out / f).is_file()]
    paths[0].write_text(json.dumps(summary, indent=1))
    md = markdown(summary)
    paths[1].write_text(md)
    figure(summary, paths[2])
    paths[3].write_text(to_html(md, paths[2]))
    client = mlflow.MlflowClient()
    metrics, tags = _parent_metrics(summary)
    short_metrics, short_tags = parent_fields(summary, spec)  # the answer, in the runs table
    metrics.update(short_metrics)
    tags.update(short_tags)
    now = int(time.time() * 1000)
    entities = [mlflow.entities.Metric(k, float(v), now, 0) for k, v in metrics.items()]
    for start in range(0, len(entities), 500):
        client.log_batch(parent, metrics=entities[start:start + 500])
    client.set_tag(parent, "mlflow.note.content", description(summary)[:5000])
    for k, v in tags.items():
        client.set_tag(parent, k, v)
    for path in paths:
        client.log_artifact(parent, str(path))
    return summary, paths
