"""The names of every tensor in a molpre data dict, in one place (as NequIP does).

A sample (one conformer) and a batch are plain ``dict[str, torch.Tensor]``. Shapes use
``N`` = atoms in the batch, ``E`` = directed edges, ``B`` = molecules in the batch.
"""

from __future__ import annotations

# --- inputs -------------------------------------------------------------------------
POSITIONS = "pos"  # [N, 3] float, Angstrom
ATOMIC_NUMBERS = "atomic_numbers"  # [N] long; 0 is the mask token (see MASK_TOKEN)
BATCH = "batch"  # [N] long, index of the molecule each atom belongs to
EDGE_INDEX = "edge_index"  # [2, E] long, (sender, receiver) = (source j, target i)
NUM_GRAPHS = "num_graphs"  # [] long (python int after collate is fine)
NUM_ATOMS = "num_atoms"  # [B] long, atoms per molecule
CHARGE = "charge"  # [B] long, total charge of each molecule
MOL_INDEX = "mol_index"  # [B] long, integer id of the molecule (conformers of one molecule share it)

# --- labels ---------------------------------------------------------------------------
ENERGY = "energy"  # [B] float, eV (total energy of the molecule)
FORCES = "forces"  # [N, 3] float, eV/Angstrom

# --- model outputs ----------------------------------------------------------------------
NODE_FEATURES = "node_features"  # [N, F] invariant (l=0) per-atom features
NODE_VECTORS = "node_vectors"  # [N, C, 3] equivariant (l=1) per-atom features
NODE_IRREPS = "node_irreps"  # [N, dim(irreps)] all per-atom features, e3nn layout
GRAPH_EMBEDDING = "graph_embedding"  # [B, F] pooled invariant molecule embedding
ATOMIC_ENERGY = "atomic_energy"  # [N] eV, per-atom contribution (without atomref)
PREDICTED_ENERGY = "predicted_energy"  # [B] eV
PREDICTED_FORCES = "predicted_forces"  # [N, 3] eV/Angstrom

# --- pretraining ---------------------------------------------------------------------------
MASK = "mask"  # [N] bool, atoms whose element was replaced by MASK_TOKEN
MASKED_TARGET = "masked_target"  # [N] long, true atomic number (valid where MASK)
NOISE = "noise"  # [N, 3] float, Angstrom, Gaussian noise added to POSITIONS
#: A labeled corpus's cheap level (xTB, MMFF, a cheap PySCF level) of the same geometry:
CHEAP_ENERGY = "cheap_energy"  # [B] float64, eV, minus the corpus's per-element fit
CHEAP_FORCES = "cheap_forces"  # [N, 3] float, eV/Angstrom

#: Embedding index used for a masked atom. Atomic numbers index the embedding directly.
MASK_TOKEN = 0
#: Size of the element embedding: the mask token plus Z = 1..118.
NUM_ELEMENT_TOKENS = 119
