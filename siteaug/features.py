"""Per-residue features, residue graphs and training-split standardisation.

Every residue gets sequence features (one-hot, BLOSUM62 row, physicochemical scales), position and Cα-density
features, plus the mean of those over its neighbours in the residue graph. Proteins without a structure get a
graph of sequence neighbours only, so the same columns exist for every residue.
"""
from __future__ import annotations

import contextlib
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import torch
from torch_geometric.utils import scatter
from tqdm import tqdm

from siteaug.io import AMINO_ACIDS, InputError
from siteaug.pdb import read_ca_trace

# Rows in the usual NCBI order; columns are ARNDCQEGHILKMFPSTWYV. The X row is what unknown residues get.
_BLOSUM62_TEXT = """
A  4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0
R -1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3
N -2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3
D -2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3
C  0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1
Q -1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2
E -1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2
G  0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3
H -2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3
I -1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3
L -1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1
K -1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2
M -1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1
F -2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1
P -1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2
S  1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2
T  0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0
W -3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3
Y -2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1
V  0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4
X  0 -1 -1 -1 -2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2  0  0 -2 -1 -1
"""
_BLOSUM_COLUMNS = "ARNDCQEGHILKMFPSTWYV"


def _parse_blosum62() -> dict[str, list[int]]:
    order = [_BLOSUM_COLUMNS.index(a) for a in AMINO_ACIDS]
    rows = {}
    for line in _BLOSUM62_TEXT.strip().splitlines():
        letter, *values = line.split()
        rows[letter] = [int(values[i]) for i in order]
    return rows


BLOSUM62 = _parse_blosum62()

SCALES = {
    # Kyte & Doolittle 1982
    "kd_hydrophobicity": dict(A=1.8, C=2.5, D=-3.5, E=-3.5, F=2.8, G=-0.4, H=-3.2, I=4.5, K=-3.9, L=3.8, M=1.9,
                              N=-3.5, P=-1.6, Q=-3.5, R=-4.5, S=-0.8, T=-0.7, V=4.2, W=-0.9, Y=-1.3),
    # Net side-chain charge at pH 7; histidine is mostly neutral but partly protonated.
    "charge": dict(A=0, C=0, D=-1, E=-1, F=0, G=0, H=0.1, I=0, K=1, L=0, M=0, N=0, P=0, Q=0, R=1, S=0, T=0, V=0,
                   W=0, Y=0),
    # Zamyatnin 1972 residue volumes, Å^3
    "volume": dict(A=88.6, C=108.5, D=111.1, E=138.4, F=189.9, G=60.1, H=153.2, I=166.7, K=168.6, L=166.7,
                   M=162.9, N=114.1, P=112.7, Q=143.8, R=173.4, S=89.0, T=116.1, V=140.0, W=227.8, Y=193.6),
    # Grantham 1974
    "polarity": dict(A=8.1, C=5.5, D=13.0, E=12.3, F=5.2, G=9.0, H=10.4, I=5.2, K=11.3, L=4.9, M=5.7, N=11.6,
                     P=8.0, Q=10.5, R=10.5, S=9.2, T=8.6, V=5.9, W=5.4, Y=6.2),
    # Vihinen et al. 1994 flexibility (from normalised B-factors)
    "flexibility": dict(A=0.984, C=0.906, D=1.068, E=1.094, F=0.915, G=1.031, H=0.950, I=0.927, K=1.102,
                        L=0.935, M=0.952, N=1.048, P=1.049, Q=1.037, R=1.008, S=1.046, T=0.997, V=0.931,
                        W=0.904, Y=0.929),
}

# Residue-level context that would be meaningless (or constant within a protein) when averaged over neighbours.
_NOT_AGGREGATED = ("rel_position", "has_structure")
_LETTER_INDEX = {a: i for i, a in enumerate(AMINO_ACIDS + "X")}


def _static_table() -> np.ndarray:
    """(21, 45): one-hot, BLOSUM62 row and scales for each of AMINO_ACIDS then X."""
    table = np.zeros((21, 20 + 20 + len(SCALES)))
    table[:20, :20] = np.eye(20)
    for letter, row in _LETTER_INDEX.items():
        table[row, 20:40] = BLOSUM62[letter]
        for k, scale in enumerate(SCALES.values()):
            table[row, 40 + k] = scale[letter] if letter != "X" else np.mean(list(scale.values()))
    return table


_STATIC = _static_table()


def base_feature_names(radii=(8.0, 12.0)) -> list[str]:
    return (
        [f"aa_{a}" for a in AMINO_ACIDS]
        + [f"blosum_{a}" for a in AMINO_ACIDS]
        + list(SCALES)
        + list(_NOT_AGGREGATED)
        + [f"ca_count_r{r:g}" for r in radii]
    )


def feature_names(radii=(8.0, 12.0)) -> list[str]:
    """Base then neighbour-mean feature names, without the ``f_`` table prefix."""
    base = base_feature_names(radii)
    return base + [f"nbr_{n}" for n in base if n not in _NOT_AGGREGATED]


BASE_FEATURES = base_feature_names()
NEIGHBOUR_FEATURES = [n for n in feature_names() if n.startswith("nbr_")]


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("f_")]


def _distances(ca: np.ndarray) -> np.ndarray:
    t = torch.as_tensor(np.asarray(ca, dtype=np.float64))
    # The matmul shortcut loses precision near the cut-off; exact differences keep edges reproducible.
    d = torch.cdist(t, t, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    np.fill_diagonal(d, np.inf)
    return d


def _sequence_graph(length: int) -> np.ndarray:
    i = np.arange(max(length - 1, 0), dtype=np.int64)
    src, dst = np.concatenate([i, i + 1]), np.concatenate([i + 1, i])
    order = np.lexsort((dst, src))
    return np.stack([src[order], dst[order]])


def residue_graph(ca: np.ndarray | None, length: int, radius: float) -> np.ndarray:
    """Edges (2, E) int64 in both directions, sorted by (src, dst): Cα within ``radius`` Å, or i↔i±1 without ca."""
    if ca is None:
        return _sequence_graph(length)
    if len(ca) != length:
        raise ValueError(f"ca has {len(ca)} rows but length is {length}")
    # np.nonzero walks row-major, so edges come out sorted by src then dst.
    return np.stack(np.nonzero(_distances(ca) <= radius)).astype(np.int64)


def _check_radii(radii, graph_radius) -> None:
    if not radii or any(not r > 0 for r in radii) or len({f"{r:g}" for r in radii}) != len(radii):
        raise InputError(f"feature radii must be distinct positive numbers, got {list(radii)}")
    if not graph_radius > 0:
        raise InputError(f"graph radius must be positive, got {graph_radius}")


def protein_features(
    sequence: str, ca: np.ndarray | None, radii=(8.0, 12.0), graph_radius: float = 10.0
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Return (features float32 (L, F), feature names, edge_index int64 (2, E)) for one protein."""
    _check_radii(radii, graph_radius)
    length = len(sequence)
    try:
        letters = np.fromiter((_LETTER_INDEX[c] for c in sequence), dtype=np.int64, count=length)
    except KeyError as err:
        raise InputError(f"unknown residue letter {err.args[0]!r} in sequence") from None
    counts = np.zeros((length, len(radii)))
    if ca is None:
        edges = _sequence_graph(length)
    else:
        ca = np.asarray(ca, dtype=np.float64)
        if ca.shape != (length, 3):
            raise ValueError(f"ca has shape {ca.shape}, expected ({length}, 3)")
        d = _distances(ca)
        counts = np.stack([(d <= r).sum(axis=1) for r in radii], axis=1)
        edges = np.stack(np.nonzero(d <= graph_radius)).astype(np.int64)
    rel_position = np.arange(length) / (length - 1) if length > 1 else np.zeros(length)
    has_structure = np.full(length, float(ca is not None))
    base = np.column_stack([_STATIC[letters], rel_position, has_structure, counts])

    names = base_feature_names(radii)
    aggregated = torch.from_numpy(base[:, [k for k, n in enumerate(names) if n not in _NOT_AGGREGATED]])
    src, dst = torch.from_numpy(edges)
    # Mean over incoming edges; residues without neighbours get 0.
    neighbour = scatter(aggregated[src], dst, dim=0, dim_size=length, reduce="mean").numpy()
    return np.hstack([base, neighbour]).astype(np.float32), feature_names(radii), edges


def _structure_sequence_check(path: str, protein_id: str, structure_seq: str, record_seq: str) -> None:
    if structure_seq == record_seq:
        return
    pos = next((i for i, (a, b) in enumerate(zip(structure_seq, record_seq)) if a != b),
               min(len(structure_seq), len(record_seq)))
    raise InputError(
        f"{path}: sequence differs from record {protein_id} at position {pos + 1} "
        f"(structure {structure_seq[pos:pos + 1] or 'ends'}, record {record_seq[pos:pos + 1] or 'ends'}; "
        f"lengths {len(structure_seq)} vs {len(record_seq)})"
    )


def _protein_job(job) -> tuple[np.ndarray, np.ndarray]:
    protein_id, sequence, path, chain, radii, graph_radius = job
    ca = None
    if path:
        structure_seq, ca = read_ca_trace(path, chain)
        _structure_sequence_check(path, protein_id, structure_seq, sequence)
    x, _, edges = protein_features(sequence, ca, radii, graph_radius)
    return x, edges.astype(np.int32)  # halves what workers send back


def _init_worker() -> None:
    # Workers already run in parallel; nested torch threads would only oversubscribe the cores.
    torch.set_num_threads(1)


def _text_or_none(value) -> str | None:
    # Missing values arrive as None, "" or NaN depending on how the table was built.
    return value if isinstance(value, str) and value else None


def build_feature_tables(
    proteins: pd.DataFrame, radii=(8.0, 12.0), graph_radius: float = 10.0, threads: int = 1, progress=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (residues, edges) tables for ``proteins`` (protein_id, sequence, labels, split, structure_path, chain).

    Output is identical for any ``threads``: proteins are processed independently and collected in input order.
    """
    _check_radii(radii, graph_radius)
    ids = [str(p) for p in proteins["protein_id"]]
    sequences = [str(s) for s in proteins["sequence"]]
    labels = [str(s) for s in proteins["labels"]]
    for pid, seq, lab in zip(ids, sequences, labels):
        if len(seq) != len(lab) or set(lab) - {"0", "1"}:
            raise InputError(
                f"record {pid}: labels must be one 0/1 per residue ({len(seq)} residues, {len(lab)} labels)"
            )
    jobs = [
        (pid, seq, _text_or_none(path), _text_or_none(chain), tuple(radii), graph_radius)
        for pid, seq, path, chain in zip(ids, sequences, proteins["structure_path"], proteins["chain"])
    ]
    parallel = threads > 1 and len(jobs) > 1
    with ProcessPoolExecutor(threads, initializer=_init_worker) if parallel else contextlib.nullcontext() as pool:
        if pool is None:
            results = map(_protein_job, jobs)
        else:
            results = pool.map(_protein_job, jobs, chunksize=max(1, len(jobs) // (threads * 8)))
        if progress:
            results = tqdm(results, total=len(jobs), file=sys.stderr, mininterval=5.0, desc="features")
        results = list(results)

    names = feature_names(radii)
    lengths = [len(s) for s in sequences]
    features = np.concatenate([x for x, _ in results]) if results else np.zeros((0, len(names)), np.float32)
    residues = pd.DataFrame({
        "protein_id": np.repeat(np.array(ids, dtype=object), lengths),
        "position": np.concatenate([np.arange(n, dtype=np.int32) for n in lengths] or [np.zeros(0, np.int32)]),
        "residue": np.array(list("".join(sequences)), dtype=object),
        "label": (np.frombuffer("".join(labels).encode(), dtype=np.uint8) - ord("0")).astype(np.int8),
        "split": np.repeat(np.array([str(s) for s in proteins["split"]], dtype=object), lengths),
    })
    residues = pd.concat([residues, pd.DataFrame(features, columns=[f"f_{n}" for n in names])], axis=1)

    edge_index = np.concatenate([e for _, e in results], axis=1) if results else np.zeros((2, 0), np.int64)
    edges = pd.DataFrame({
        "protein_id": np.repeat(np.array(ids, dtype=object), [e.shape[1] for _, e in results]),
        "src": edge_index[0].astype(np.int32),
        "dst": edge_index[1].astype(np.int32),
    })
    return residues, edges


def apply_standardisation(residues: pd.DataFrame, stats: dict) -> pd.DataFrame:
    """Return a copy with each column in ``stats`` mapped to float32 (x - mean) / std."""
    out = residues.copy()
    for col, s in stats.items():
        out[col] = ((out[col].to_numpy(np.float64) - s["mean"]) / s["std"]).astype(np.float32)
    return out


def standardise(
    residues: pd.DataFrame, columns, split_column: str = "split", train_value: str = "train"
) -> tuple[pd.DataFrame, dict]:
    """Standardise ``columns`` with mean/std of the training rows only, so no test information leaks in."""
    train = residues[residues[split_column] == train_value]
    if train.empty:
        raise InputError(f"no rows with {split_column} == {train_value!r} to compute standardisation from")
    stats = {}
    for col in columns:
        values = train[col].to_numpy(np.float64)
        std = float(values.std())
        # Constant columns (e.g. a one-hot absent from training) would divide by zero.
        stats[col] = {"mean": float(values.mean()), "std": std if std > 0 and np.isfinite(std) else 1.0}
    return apply_standardisation(residues, stats), stats
