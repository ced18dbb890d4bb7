"""The demo's answer: the study's table, verdicts and savings on one screen, and its best
model registered in MLflow (``models:/molpre-demo@champion``) for ``Predictor.load``."""

from __future__ import annotations

from pathlib import Path

REGISTERED = "molpre-demo"
ALIAS = "champion"
BASELINES = ("linear", "mean", "krr")


def _cell(cell: dict | None, seeds: int) -> str:
    """``mean [low, high]``, with ``n=K`` when only K of the ``seeds`` seeds count."""
    if not cell or not cell.get("n"):
        return "-"
    text = f"{cell['mean']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}]"
    return text if cell["n"] >= seeds else f"{text} n={cell['n']}"


def _cells(summary: dict) -> dict[str, dict]:
    """``{arm: {budget: cell}}`` with int budgets (a summary read back from JSON has str keys)."""
    return {arm: {int(b): c for b, c in by_b.items()} for arm, by_b in summary["table"].items()}


def seeds_of(summary: dict) -> int:
    """The most seeds any cell of the table has (the study's seeds per arm and budget)."""
    return max((c.get("n", 0) for by_b in summary["table"].values() for c in by_b.values()),
               default=0)


def _diff(d: dict | None) -> str:
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]" if d else "-"


def best_record(records: list[dict]) -> dict:
    """The seed-0 child of the neural arm with the lowest mean test error at the largest
    budget (children that did not beat the per-element fit count too: there is always a
    model to register, and the table says how good it is)."""
    budget = max(r["budget"] for r in records)
    neural = [r for r in records if r["budget"] == budget and r["arm"] not in BASELINES]
    means: dict[str, list[float]] = {}
    for r in neural:
        means.setdefault(r["arm"], []).append(r["test_mae"])
    arm = min(means, key=lambda a: float(sum(means[a]) / len(means[a])))
    return next(r for r in neural if r["arm"] == arm and r["seed"] == 0)


def table_lines(summary: dict) -> list[str]:
    """The table, one row a budget: arms side by side, mean [95% interval]."""
    table, seeds = _cells(summary), seeds_of(summary)
    arms = list(table)
    width = max(24, *(len(a) + 2 for a in arms))
    lines = ["  N   " + "".join(f"{a:<{width}}" for a in arms)]
    short = False
    for b in summary["budgets"]:
        cells = [_cell(table[a].get(int(b)), seeds) for a in arms]
        short = short or any(c == "-" or " n=" in c for c in cells)
        lines.append(f"{b:>4}  " + "".join(f"{c:<{width}}" for c in cells))
    if short:
        lines.append(f"  (n=K or -: only K of {seeds} seeds count; the other neural children did "
                     "not beat the per-element fit of their own labels by 10%: see the report)")
    return lines


def verdict_lines(summary: dict, unit: str) -> list[str]:
    """One line per pretrained arm and budget: the verdict, both paired differences, saving."""
    lines = []
    for arm, by_b in summary["comparisons"].items():
        for b, c in by_b.items():
            saving = (summary.get("savings") or {}).get(arm, {}).get(b) \
                or (summary.get("savings") or {}).get(arm, {}).get(str(b))
            scratch = _cells(summary).get("scratch", {}).get(int(b), {})
            ratio = _saving_text(saving, int(scratch.get("n", 0)))
            lines.append(f"  {arm} N={b}: {c['verdict']} ({_diff(c['vs_scratch'])} {unit} vs "
                         f"scratch, {_diff(c['vs_control'])} vs its random-init control{ratio})")
    return lines


def _saving_text(saving: dict | None, scratch_seeds: int) -> str:
    """'; saves 1.8x labels [1.1x, 2.9x]' (the 95% interval over seeds), or '' when there is
    no saving or no scratch seed counts at that budget (scratch's curve would be extrapolated
    there, and a ratio without scratch's own errors is not a measurement)."""
    if not saving or scratch_seeds == 0:
        return ""
    low, high = saving.get("ratio_low"), saving.get("ratio_high")
    band = f" [{low:.1f}x, {high:.1f}x]" if low is not None and high is not None else ""
    return f"; saves {saving['ratio']:.1f}x labels{band}"


def _delta_note(summary: dict) -> str:
    """'; every arm learns on top of LEVEL' when the study is a delta study, else ''."""
    level = (summary.get("delta") or {}).get("level")
    return (f"; every arm (the linear fit too) learns the energy minus s x its {level} energy"
            if level else "")


def answer(study, model_uri: str, record: dict, out: Path) -> str:
    """The demo's closing screen (the study's summary, the registered model, what next)."""
    summary = study.summary
    unit = summary["unit"]
    verdicts = [c["verdict"] for by_b in summary["comparisons"].values() for c in by_b.values()]
    headline = ("pretraining paid at these sizes" if "gain" in verdicts and
                "negative transfer" not in verdicts else
                "no detectable effect at these sizes: run the full QM9 study "
                "(molpre study --config pipelines/qm9_sample.yaml) for an answer with room"
                if all(v == "no detectable effect" for v in verdicts) else
                "mixed: read the verdicts")
    seeds = seeds_of(summary)
    lines = [f"== Does pretraining save labels here? {headline} ==",
             f"test MAE ({unit}), mean [95% interval] over {seeds} seeds; "
             f"{summary['n_test']} test molecules" + _delta_note(summary),
             *table_lines(summary), "", *verdict_lines(summary, unit), "",
             f"model: {model_uri} ({record['arm']}, N={record['budget']}, seed 0: "
             f"{record['test_mae']:.2f} {unit} on the test set)",
             f"  python -c \"from molpre import Predictor; print(Predictor.load('{model_uri}')"
             ".predict(['CCO']))\"",
             f"full report: {out / 'study' / 'report.md'}", ""]
    return "\n".join(lines)


def register_best(study, tracking_uri: str) -> tuple[str, dict]:
    """Register the best neural arm's seed-0 model at the largest budget as
    ``models:/molpre-demo@champion`` (once: a rerun finds the alias already on that run);
    returns the URI and the child's record."""
    import mlflow

    from molpre.pyfunc import log_pyfunc_model

    record = best_record(study.records)
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    uri = f"models:/{REGISTERED}@{ALIAS}"
    try:
        if client.get_model_version_by_alias(REGISTERED, ALIAS).run_id == record["run_id"]:
            return uri, record
    except mlflow.exceptions.MlflowException:
        pass  # nothing registered yet
    slug = f"{record['arm'].replace(':', '-')}-N{record['budget']}-s0"
    checkpoint = Path(study.out) / "children" / slug / "model.ckpt"
    with mlflow.start_run(run_id=record["run_id"]):
        log_pyfunc_model(checkpoint, REGISTERED)
    versions = client.search_model_versions(f"name='{REGISTERED}'")
    latest = max((v for v in versions if v.run_id == record["run_id"]),
                 key=lambda v: int(v.version))
    client.set_registered_model_alias(REGISTERED, ALIAS, latest.version)
    return uri, record
