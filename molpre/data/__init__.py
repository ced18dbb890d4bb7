"""Data: key names, label stores, neighbour graphs, batches and splits."""
