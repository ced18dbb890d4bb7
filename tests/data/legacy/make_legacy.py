"""Write checkpoints with molpre at 52ca04c (before head kinds became classes) and the
predictions that code gives, so that tests can check the new code loads them unchanged.

    PYTHONPATH=<old checkout> python make_legacy.py <out folder>
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from ase.build import molecule
from ase.io import write

import molpre
from molpre.data.graph import atoms_to_sample, collate
from molpre.models.checkpoint import save_checkpoint
from molpre.models.committee import Committee
from molpre.models.encoder import Encoder, EncoderConfig
from molpre.models.energy import PropertyModel, make_head
from molpre.models.inference import predict_targets
from molpre.targets import get_target

TINY = EncoderConfig(channels=8, lmax=2, num_layers=2, cutoff=4.0, num_radial_basis=4,
                     radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3)
ATOMREF = {1: -13.6, 6: -1029.8, 7: -1485.0, 8: -2041.3}
ALPHA_REF = {1: 0.4, 6: 1.2, 7: 0.9, 8: 0.8}


def build(seed: int) -> PropertyModel:
    torch.manual_seed(seed)
    enc = Encoder(TINY)
    heads = {"energy": make_head(get_target("energy"), enc, atomref=ATOMREF, scale=0.05),
             "gap": make_head(get_target("gap"), enc, offset=6.5, scale=1.3),
             "dipole": make_head(get_target("dipole"), enc, scale=0.3),
             "alpha": make_head(get_target("alpha"), enc, atomref=ALPHA_REF, scale=0.2)}
    model = PropertyModel(enc, heads)
    with torch.no_grad():  # move every parameter off its init so a mis-mapped weight shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def preds(model, samples) -> dict:
    values = predict_targets(model, samples)
    forces = model(collate(samples), compute_forces=True)["predicted_forces"]
    return {**{k: np.asarray(v).tolist() for k, v in values.items()},
            "forces": forces.detach().double().numpy().tolist()}


def main(out: Path) -> None:
    print(molpre.__file__)
    mols = [molecule(n) for n in ("H2O", "CH4", "NH3", "CH3OH", "HCOOH")]
    for i, a in enumerate(mols):
        a.info["mol_id"] = f"m{i}"
    samples = [atoms_to_sample(a, TINY.cutoff) for a in mols]
    single, committee = build(0), Committee([build(1), build(2)]).eval()
    meta = {"target": "energy,gap,dipole,alpha", "unit": None}
    columns = ["energy_ev", "gap_ev", "dipole_debye", "alpha_a3"]
    save_checkpoint(single, out / "property.ckpt", {}, {**meta, "columns": columns})
    save_checkpoint(committee, out / "committee.ckpt", {}, dict(meta))
    write(out / "molecules.extxyz", mols, format="extxyz")
    (out / "predictions.json").write_text(json.dumps(
        {"source": "molpre 52ca04c (tests/data/legacy/README.md)",
         "property": preds(single, samples), "committee": preds(committee, samples)}, indent=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
