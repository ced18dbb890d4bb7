"""Write legacy_small.pt: a finetune checkpoint and its predictions made by an older molpre.

Run with that molpre first on the path (the file in the repository was made by the code
before the dense edge convolution, commit 52ca04c):

    PYTHONPATH=/path/to/old/checkout python tests/unit/models/data/make_legacy_checkpoint.py

test_legacy_checkpoint.py loads it with today's code and must get the same numbers.
"""

from pathlib import Path

import torch
from ase.build import molecule

from molpre.data.graph import atoms_to_sample, collate
from molpre.models.checkpoint import save_checkpoint
from molpre.models.encoder import EncoderConfig
from molpre.models.energy import EnergyModel, PropertyModel

NAMES = ["CH3CH2OH", "H2O", "CH3CONH2"]
CONFIGS = {
    "lmax1": EncoderConfig(channels=8, lmax=1, num_layers=2, cutoff=4.0, num_radial_basis=4,
                           radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3),
    "lmax2": EncoderConfig(channels=8, lmax=2, num_layers=2, cutoff=4.0, num_radial_basis=4,
                           radial_mlp_width=8, avg_num_neighbors=4.0, attr_dim=3),
}


def main() -> None:
    here = Path(__file__).parent
    for name, config in CONFIGS.items():
        torch.manual_seed(0)
        from molpre.models.encoder import Encoder

        model = EnergyModel(Encoder(config), {1: -13.6, 6: -1029.0, 7: -1484.0, 8: -2041.0},
                            energy_scale=0.5)
        with torch.no_grad():  # move weights off their init so every path matters
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        path = here / f"legacy_{name}.pt"
        save_checkpoint(model, path, config={}, meta={"target": "energy"})
        batch = collate([atoms_to_sample(molecule(n), config.cutoff) for n in NAMES])
        out = model(batch, compute_forces=True)
        torch.save({"names": NAMES, "energy": out["predicted_energy"].detach(),
                    "forces": out["predicted_forces"].detach(),
                    "features": out["node_features"].detach()}, here / f"legacy_{name}_out.pt")
        assert isinstance(model, PropertyModel)


if __name__ == "__main__":
    main()
