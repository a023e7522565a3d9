"""The arms: the registry of every arm (torch-free), the shared training protocol, the MLP classifier and the reference
models (gradient-boosted trees, GNN, graph transformer, out-of-fold tree scores)."""
