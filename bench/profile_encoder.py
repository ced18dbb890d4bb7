"""Where a step's time goes: torch.profiler on training, pretraining and inference steps.

    OMP_NUM_THREADS=1 python bench/profile_encoder.py [--threads 1] [--preset small]
        [--batch-size 32] [--steps 4] [--markdown]

Three workloads on QM9-sample molecules (/work/shared/data/qm9_sample3000.extxyz.gz):

* ``train``: collate + PropertyModel (energy head, ZBL) forward, forces by autograd with
  ``create_graph`` + energy/force MSE ``loss.backward()`` (a double backward) + Adam step.
* ``pretrain``: per step what the shard stream does (one graph per view, 2 views a molecule,
  ``collate_views``), then mask + contrast + denoise corruptions, the encoder, the three
  heads, backward and AdamW (PretrainModule.losses).
* ``inference``: what the Predictor's model does per batch: graphs + collate, forward, forces
  by autograd without ``create_graph``.

Every submodule of the model is labelled by its attribute name (``conv``: the edge tensor
product, ``product``: the node product, ``radial``: the radial MLP of a block or the radial
basis of the encoder, ...). The autograd nodes that run in ``torch.autograd.grad`` (forces)
and in ``loss.backward`` (the double backward) are charged to the labelled forward region
whose op created them (via the profiler's sequence numbers, followed through the first
backward for the double backward). ``block: gather+scatter`` is an interaction block's own
code (``x[sender]``, the ``index_add`` neighbour sum, the residual); ``python/untraced`` is
the step's wall time outside every profiled op. The profiler slows small ops, so the
un-profiled step time is printed too, with its CPU time (process time: on a shared machine,
the figure other load moves least). The table regenerates with the command above.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from collections import defaultdict
from pathlib import Path

import ase.io
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from molpre.data import keys
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.atomref import fit_atomref
from molpre.models.energy import EnergyModel
from molpre.models.presets import build_encoder, resolve_config


def shared_data(name: str) -> Path:
    """``shared/data/<name>`` beside the checkout (or beside a parent: worktrees nest)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data" / name).exists():
            return parent / "shared" / "data" / name
    return Path(__file__).resolve().parents[2] / "shared" / "data" / name


DATA = shared_data("qm9_sample3000.extxyz.gz")
EV_PER_KCAL = 0.0433641
#: submodule attribute name -> label in the table (first match along the module path wins)
LABELS = {
    "spherical_harmonics": "spherical harmonics",
    "conv": "tensor product: edge conv", "dense_conv": "tensor product: edge conv",
    "product": "tensor product: node product",
    "self_interaction": "self-interaction (TP with attr)",
    "linear_up": "linears", "linear_down": "linears", "linear_gate": "linears",
    "gate": "gate nonlinearity",
    "embedding": "element embedding",
    "repulsion": "ZBL repulsion",
    "heads": "heads + losses", "objectives": "heads + losses",
}


def label_for(path: str) -> str | None:
    """Table label of a submodule at ``path`` (``blocks.0.conv``), None when unlabelled."""
    if path == "":
        return "model: other (outside labelled parts)"
    parts = path.split(".")
    if parts[-1] == "encoder":
        return "encoder: edge vectors, pooling"
    for part in reversed(parts):
        if part == "radial":
            return "radial MLP" if "blocks" in parts else "radial basis"
        if part in LABELS:
            return LABELS[part]
    if len(parts) >= 2 and parts[-2] == "blocks":
        return "block: gather+scatter"
    return None


def label_modules(model: torch.nn.Module) -> None:
    """Wrap every labelled submodule's forward in a ``record_function(label)`` region."""
    for path, module in model.named_modules():
        label = label_for(path)
        if label is None:
            continue

        def pre(mod, args, label=label):
            mod._rf_stack = getattr(mod, "_rf_stack", [])
            rf = record_function("L:" + label)
            rf.__enter__()
            mod._rf_stack.append(rf)

        def post(mod, args, output):
            mod._rf_stack.pop().__exit__(None, None, None)

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)


def frames(n: int):
    return ase.io.read(gzip.open(DATA, "rt"), index=f":{n}", format="extxyz")


def train_workload(atoms, preset: str, batch_size: int):
    """(model, step) of energy+forces training; step(i) runs batch i (precomputed graphs)."""
    torch.manual_seed(0)
    encoder = build_encoder(preset)
    energies = [a.info["u0_atom"] * EV_PER_KCAL for a in atoms]
    model = EnergyModel(encoder, fit_atomref([a.numbers for a in atoms], energies), energy_scale=0.1)
    samples = [atoms_to_sample(a, encoder.config.cutoff, energy=e, forces=torch.zeros(len(a), 3).numpy())
               for a, e in zip(atoms, energies, strict=True)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    chunks = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]

    def step(i: int) -> int:
        with record_function("P:data: graphs + collate"):
            batch = collate(chunks[i % len(chunks)])
        opt.zero_grad()
        with record_function("P:forward"):
            out = model(batch, compute_forces=True)
        with record_function("P:loss.backward"):
            loss = (out[keys.PREDICTED_ENERGY] - batch[keys.ENERGY]).pow(2).mean()
            loss = loss + (out[keys.PREDICTED_FORCES] - batch[keys.FORCES]).pow(2).mean()
            loss.backward()
        with record_function("P:optimizer"):
            opt.step()
        return int(batch[keys.NUM_GRAPHS])

    return model, step


def pretrain_workload(atoms, preset: str, batch_size: int):
    """(module, step) of a mask+contrast+denoise pretraining step, graphs built per step."""
    from molpre.data.shard_stream import collate_views
    from molpre.train.pretrain_module import PretrainModule

    torch.manual_seed(0)
    objectives = {n: {"weight": 1.0} for n in ("mask", "contrast", "denoise")}
    module = PretrainModule(resolve_config(preset).to_dict(), objectives)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    cutoff = module.encoder.config.cutoff
    chunks = [atoms[i:i + batch_size] for i in range(0, len(atoms), batch_size)]
    generator = torch.Generator().manual_seed(0)

    def step(i: int) -> int:
        with record_function("P:data: graphs + collate"):
            items = []
            for j, a in enumerate(chunks[i % len(chunks)]):
                views = [atoms_to_sample(a, cutoff) for _ in range(module.views)]
                for v in views:
                    v[keys.MOL_INDEX] = torch.tensor([j])
                items.append(views)
            batch = collate_views(items)
        opt.zero_grad()
        with record_function("P:forward"):
            loss = module.losses(batch, generator)["loss"]
        with record_function("P:loss.backward"):
            loss.backward()
        with record_function("P:optimizer"):
            opt.step()
        return int(batch[keys.NUM_GRAPHS])

    return module, step


def inference_workload(atoms, preset: str, batch_size: int, forces: bool = True):
    """(model, step) of prediction: graphs + collate + energies (+ forces, no create_graph)."""
    model, _ = train_workload(atoms[:batch_size], preset, batch_size)
    model.eval()
    cutoff = model.encoder.config.cutoff
    chunks = [atoms[i:i + batch_size] for i in range(0, len(atoms), batch_size)]

    def step(i: int) -> int:
        with record_function("P:data: graphs + collate"):
            batch = collate([atoms_to_sample(a, cutoff) for a in chunks[i % len(chunks)]])
        with record_function("P:forward"), torch.no_grad():
            out = model(batch, compute_forces=forces)
        return int(out[keys.PREDICTED_ENERGY].shape[0])

    return model, step


def predict_workload(atoms, preset: str, batch_size: int):
    """(model, step) of the Predictor's model path: graphs + collate + energies, no grad."""
    return inference_workload(atoms, preset, batch_size, forces=False)


WORKLOADS = {"train": train_workload, "pretrain": pretrain_workload,
             "inference": inference_workload, "predict": predict_workload}


def _ancestor(event, prefixes: tuple[str, ...]):
    parent = event.cpu_parent
    while parent is not None and not parent.name.startswith(prefixes):
        parent = parent.cpu_parent
    return parent


def attribute(events) -> tuple[dict, dict, float]:
    """({(label, phase): ms}, {phase: ms}, traced ms) from the profiler's event list.

    Forward time of a label is its region's time minus nested labels; an autograd node's time
    goes to the label of the op that created it (sequence number), found through enclosing
    labels or, for nodes made during a backward, through the enclosing node's own creator.
    """
    events = sorted(events, key=lambda e: e.time_range.start)
    creator: dict[int, str] = {}
    table: dict[tuple[str, str], float] = defaultdict(float)
    phases: dict[str, float] = defaultdict(float)
    marks = ("L:", "autograd::engine::evaluate_function")

    def region_of(event) -> str:
        anc = _ancestor(event, marks)
        if anc is None:
            return "unlabelled"
        if anc.name.startswith("L:"):
            return anc.name[2:]
        return creator.get(anc.sequence_nr, "unlabelled")

    traced = 0.0
    for ev in events:
        ms = ev.time_range.elapsed_us() / 1000.0
        if ev.cpu_parent is None:
            traced += ms
        if ev.name.startswith("P:"):
            phases[ev.name[2:]] += ms
            continue
        if ev.sequence_nr >= 0 and not ev.name.startswith(marks) and ev.sequence_nr not in creator:
            creator[ev.sequence_nr] = region_of(ev)
        phase_ev = _ancestor(ev, ("P:",))
        phase = phase_ev.name[2:] if phase_ev is not None else "?"
        if ev.name.startswith("L:"):
            nested = sum(c.time_range.elapsed_us() for c in _label_children(ev)) / 1000.0
            table[(ev.name[2:], "forward")] += ms - nested
        elif ev.name.startswith("autograd::engine::evaluate_function"):
            column = "forces backward" if phase == "forward" else "loss.backward"
            table[(creator.get(ev.sequence_nr, "unlabelled"), column)] += ms
    return table, phases, traced


def _label_children(event):
    """Nearest labelled descendants of ``event`` (labels and autograd nodes: both are
    charged to their own rows)."""
    out = []
    for child in event.cpu_children:
        if child.name.startswith(("L:", "autograd::engine::evaluate_function")):
            out.append(child)
        else:
            out.extend(_label_children(child))
    return out


def profile_workload(name: str, atoms, args) -> dict:
    model, step = WORKLOADS[name](atoms, args.preset, args.batch_size)
    for i in range(2):  # warm-up
        step(i)
    start, start_cpu = time.perf_counter(), time.process_time()
    n = sum(step(i) for i in range(args.steps))
    plain_ms = (time.perf_counter() - start) * 1000.0 / args.steps
    cpu_ms = (time.process_time() - start_cpu) * 1000.0 / args.steps
    label_modules(model)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for i in range(args.steps):
            step(i)
        wall = (time.perf_counter() - start) * 1000.0 / args.steps
    table, phases, traced = attribute(prof.events())
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:args.top]
    return {"name": name, "table": {k: v / args.steps for k, v in table.items()},
            "phases": {k: v / args.steps for k, v in phases.items()}, "wall": wall,
            "traced": traced / args.steps, "plain_ms": plain_ms, "cpu_ms": cpu_ms,
            "conformers_per_s": n / (plain_ms * args.steps / 1000.0),
            "ops": [(o.key, o.self_cpu_time_total / 1000.0 / args.steps, o.count // args.steps)
                    for o in ops]}


def print_result(res: dict) -> None:
    table, wall = res["table"], res["wall"]
    labels = sorted({k[0] for k in table}, key=lambda lab: -sum(v for k, v in table.items() if k[0] == lab))
    cols = [p for p in ("forward", "forces backward", "loss.backward")
            if any(k[1] == p for k in table)]
    print(f"\n### {res['name']}: {res['plain_ms']:.1f} ms/step un-profiled "
          f"({res['conformers_per_s']:.0f} conformers/s; {res['cpu_ms']:.1f} CPU-ms/step), "
          f"{wall:.1f} ms/step profiled\n")
    head = " | ".join(["component"] + [f"{c} ms" for c in cols] + ["total ms", "% of step"])
    print(f"| {head} |\n|" + "---|" * (len(cols) + 3))
    for lab in labels:
        vals = [table.get((lab, c), 0.0) for c in cols]
        total = sum(v for k, v in table.items() if k[0] == lab)
        print(f"| {lab} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {total:.2f} | {100 * total / wall:.1f} |")
    for phase in ("data: graphs + collate", "optimizer"):
        if phase in res["phases"]:
            ms = res["phases"][phase]
            print(f"| phase: {phase} |" + " |" * len(cols) + f" {ms:.2f} | {100 * ms / wall:.1f} |")
    untraced = wall - res["traced"]
    rest = wall - untraced - sum(table.values()) - sum(
        res["phases"].get(p, 0.0) for p in ("data: graphs + collate", "optimizer"))
    for name, ms in (("other ops (corruption, loss, glue)", rest), ("python/untraced", untraced)):
        print(f"| {name} |" + " |" * len(cols) + f" {ms:.2f} | {100 * ms / wall:.1f} |")
    print("\nTop ops by self CPU time (ms/step, calls/step): " + ", ".join(
        f"{k} {ms:.2f} ({c})" for k, ms, c in res["ops"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n", type=int, default=256, help="QM9 molecules cycled through")
    parser.add_argument("--steps", type=int, default=4, help="profiled steps per workload")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--workloads", default="train,pretrain,inference,predict")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    atoms = frames(args.n)
    print(f"profile: preset {args.preset}, batch {args.batch_size} QM9 molecules, "
          f"{args.threads} thread(s), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name in args.workloads.split(","):
        print_result(profile_workload(name, atoms, args))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
