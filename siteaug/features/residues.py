"""Per-residue features, residue graphs and training-split standardisation.

Features come in groups that the config selects (``features.groups``):

- ``sequence``: one-hot, BLOSUM62 row, physicochemical scales and relative position;
- ``structure``: ``has_structure``, Cα counts at two radii and the descriptors of :mod:`siteaug.features.structure`
  (secondary structure, φ/ψ, RSA, half-sphere exposure, contact number), plus their means over the residues within
  each radius (``ctx_r<R>_*``). A protein without a structure gets zeros here and ``has_structure = 0``;
- any precomputed group named under ``features.precomputed`` (a folder of per-residue ``<id>.npy`` arrays).

Every group's columns (except position and ``has_structure``) are also averaged over the residue graph (``nbr_*``).
The graph links Cα atoms within ``graph_radius`` (from the PDB with the structure group, or from precomputed
distance maps), else sequence neighbours, so the same columns exist for every residue.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from siteaug.features.precomputed import feature_path, group_width, load_distance_map, load_feature_group, unknown_distance_pairs
from siteaug.features.structure import CONTEXT_COLUMNS, STRUCTURE_COLUMNS, structure_descriptors
from siteaug.inputs.pdb import ChainAtoms, check_ca_geometry, read_chain_atoms
from siteaug.runtime.io import AMINO_ACIDS, InputError
from siteaug.runtime.tables import FEATURE_PREFIX, feature_columns  # noqa: F401  (feature_columns: callers and bench/ import it from here)

log = logging.getLogger(__name__)

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

SEQUENCE, STRUCTURE = "sequence", "structure"
BUILTIN_GROUPS = (SEQUENCE, STRUCTURE)
# The schema's defaults of features.groups, neighbour_radii and graph_radius, written once here for the functions that
# default to them (feature names of a default run without a config); tests/test_defaults.py checks they are the schema's.
DEFAULT_GROUPS = (SEQUENCE, STRUCTURE)
DEFAULT_RADII = (8.0, 12.0)
DEFAULT_GRAPH_RADIUS = 10.0
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


def _group_names(group: str, radii, widths: dict[str, int]) -> list[str]:
    if group == SEQUENCE:
        return [f"aa_{a}" for a in AMINO_ACIDS] + [f"blosum_{a}" for a in AMINO_ACIDS] + list(SCALES) + ["rel_position"]
    if group == STRUCTURE:
        return ["has_structure"] + [f"ca_count_r{r:g}" for r in radii] + STRUCTURE_COLUMNS
    return [f"{group}_{k}" for k in range(widths[group])]


def base_feature_names(radii=DEFAULT_RADII, groups=DEFAULT_GROUPS, widths: dict[str, int] | None = None) -> list[str]:
    """Per-residue feature names of ``groups`` in order; ``widths`` gives each precomputed group's column count."""
    return [name for group in groups for name in _group_names(group, radii, widths or {})]


def feature_names(radii=DEFAULT_RADII, groups=DEFAULT_GROUPS, widths: dict[str, int] | None = None) -> list[str]:
    """Base names, neighbour means over the residue graph, then (with structure) spatial context at each radius."""
    base = base_feature_names(radii, groups, widths)
    names = base + [f"nbr_{n}" for n in base if n not in _NOT_AGGREGATED]
    if STRUCTURE in groups:
        names += [f"ctx_r{r:g}_{n}" for r in radii for n in CONTEXT_COLUMNS]
    return names


BASE_FEATURES = base_feature_names()
NEIGHBOUR_FEATURES = [n for n in feature_names() if n.startswith("nbr_")]
CONTEXT_FEATURES = [n for n in feature_names() if n.startswith("ctx_")]


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


def _radius_edges(distances: np.ndarray, radius: float) -> np.ndarray:
    # np.nonzero walks row-major, so edges come out sorted by src then dst; the diagonal is excluded.
    within = distances <= radius
    np.fill_diagonal(within, False)
    return np.stack(np.nonzero(within)).astype(np.int64)


# Per-edge geometry columns of the edges table (see ``edge_geometry``).
EDGE_GEOMETRY_COLUMNS = ("distance", "dir_1", "dir_2", "dir_3", "frame_11", "frame_22", "frame_33")


def _local_frames(backbone: np.ndarray) -> np.ndarray:
    """(L, 3, 3) orthonormal frame of each residue from N, CA, C: rows e1 along CA→C, e2 in the N–CA–C plane, e3 their
    cross product. Residues with missing or degenerate backbone atoms get a zero frame (their orientation columns are 0)."""
    n, ca, c = backbone[:, 0], backbone[:, 1], backbone[:, 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        e1 = c - ca
        e1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
        u = n - ca
        e2 = u - np.sum(u * e1, axis=1, keepdims=True) * e1
        e2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True)
        frames = np.stack([e1, e2, np.cross(e1, e2)], axis=1)
    return np.where(np.isfinite(frames).all(axis=(1, 2), keepdims=True), frames, 0.0)


def edge_geometry(edges: np.ndarray, distances: np.ndarray | None, backbone: np.ndarray | None) -> np.ndarray:
    """(E, 7) float32 per directed edge src→dst: the Cα distance in Å (from ``backbone`` when given, else from
    ``distances``; NaN when unknown: sequence-neighbour graphs and unknown distance-map entries), the unit vector Cα(src)→Cα(dst) in the local frame of src (3), and the diagonal of
    the relative rotation between the two residues' frames (3). The last six are 0 without a backbone."""
    src, dst = edges
    out = np.zeros((edges.shape[1], len(EDGE_GEOMETRY_COLUMNS)), np.float64)
    out[:, 0] = np.nan
    if distances is not None:
        d = distances[src, dst]
        out[:, 0] = np.where(np.isfinite(d), d, np.nan)
    if backbone is not None:
        frames = _local_frames(backbone)
        ca = backbone[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = ca[dst] - ca[src]
            length = np.linalg.norm(direction, axis=1, keepdims=True)
            out[:, 0] = length[:, 0]  # the Cα distance, per edge: no distance matrix needed
            direction = direction / length
        out[:, 1:4] = np.nan_to_num(np.einsum("eij,ej->ei", frames[src], direction))
        out[:, 4:7] = np.einsum("eij,eij->ei", frames[src], frames[dst])
    return out.astype(np.float32)


def residue_graph(ca: np.ndarray | None, length: int, radius: float) -> np.ndarray:
    """Edges (2, E) int64 in both directions, sorted by (src, dst): Cα within ``radius`` Å, or i↔i±1 without ca."""
    if ca is None:
        return _sequence_graph(length)
    if len(ca) != length:
        raise ValueError(f"ca has {len(ca)} rows but length is {length}")
    return _radius_edges(_distances(ca), radius)


def _check_radii(radii, graph_radius) -> None:
    if not radii or any(not r > 0 for r in radii) or len({f"{r:g}" for r in radii}) != len(radii):
        raise InputError(f"feature radii must be distinct positive numbers, got {list(radii)}")
    if not graph_radius > 0:
        raise InputError(f"graph radius must be positive, got {graph_radius}")


def check_groups(groups, precomputed: dict | None) -> tuple[str, ...]:
    """Every group is built in or named under ``features.precomputed``; returns them as a tuple."""
    groups = tuple(groups)
    if not groups or len(set(groups)) != len(groups):
        raise InputError(f"config features.groups: need distinct group names, got {list(groups)}")
    unknown = [g for g in groups if g not in BUILTIN_GROUPS and g not in (precomputed or {})]
    if unknown:
        raise InputError(
            f"config features.groups: {unknown[0]!r} is neither built in ({', '.join(BUILTIN_GROUPS)}) "
            "nor a key of features.precomputed"
        )
    clash = [g for g in (precomputed or {}) if g in BUILTIN_GROUPS]
    if clash:
        raise InputError(f"config features.precomputed: {clash[0]!r} is a built-in group name; rename it")
    return groups


def _mean_over(values: np.ndarray, edges: np.ndarray, length: int) -> np.ndarray:
    """Mean of ``values`` over each residue's incoming edges; no neighbours gives 0.

    The operations of torch_geometric's ``scatter(..., reduce="mean")`` (sums and counts by ``scatter_add_``, counts
    clamped to 1), written out so that the features and prepare jobs do not import torch_geometric (about 2 s of CPU).
    """
    src, dst = torch.from_numpy(edges)
    # float32 halves the gather/scatter traffic, the stage's largest cost; the table is float32 anyway.
    gathered = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[src]
    count = gathered.new_zeros(length).scatter_add_(0, dst, gathered.new_ones(len(dst))).clamp(min=1)
    shape = (-1,) + (1,) * (gathered.dim() - 1)
    total = gathered.new_zeros((length, *gathered.shape[1:])).scatter_add_(0, dst.view(shape).expand_as(gathered), gathered)
    return (total / count.view(shape).expand_as(total)).numpy()


def _structure_block(chain: ChainAtoms | None, distances: np.ndarray | None, length: int, radii) -> np.ndarray:
    """has_structure, Cα counts and the structure descriptors; all zeros (NaN-free) for a protein without one."""
    if chain is None:
        return np.zeros((length, 1 + len(radii) + len(STRUCTURE_COLUMNS)))
    counts = np.stack([(distances <= r).sum(axis=1) for r in radii], axis=1)
    return np.column_stack([np.ones(length), counts, structure_descriptors(chain)])


def protein_features(
    sequence: str,
    chain: ChainAtoms | None = None,
    radii=DEFAULT_RADII,
    graph_radius: float = DEFAULT_GRAPH_RADIUS,
    *,
    groups=DEFAULT_GROUPS,
    precomputed: dict[str, np.ndarray] | None = None,
    distances: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Return (features float32 (L, F), feature names, edge_index int64 (2, E)) for one protein.

    The residue graph links Cα atoms within ``graph_radius``: from ``chain`` when the structure group is selected,
    else from a precomputed ``distances`` map; with neither it links sequence neighbours. ``precomputed`` holds the
    already validated (L, W) arrays of the precomputed groups named in ``groups``.
    """
    _check_radii(radii, graph_radius)
    length = len(sequence)
    precomputed = precomputed or {}
    if chain is not None and STRUCTURE in groups:
        if len(chain.sequence) != length:
            raise ValueError(f"structure has {len(chain.sequence)} residues but the sequence has {length}")
        distances = _distances(chain.ca)
    elif distances is not None:
        distances = np.array(distances, dtype=np.float64)
        np.fill_diagonal(distances, np.inf)
    edges = _sequence_graph(length) if distances is None else _radius_edges(distances, graph_radius)

    blocks = []
    for group in groups:
        if group == SEQUENCE:
            try:
                letters = np.fromiter((_LETTER_INDEX[c] for c in sequence), dtype=np.int64, count=length)
            except KeyError as err:
                raise InputError(f"unknown residue letter {err.args[0]!r} in sequence") from None
            rel_position = np.arange(length) / (length - 1) if length > 1 else np.zeros(length)
            blocks.append(np.column_stack([_STATIC[letters], rel_position]))
        elif group == STRUCTURE:
            blocks.append(_structure_block(chain, distances, length, radii))
        else:
            blocks.append(np.asarray(precomputed[group], dtype=np.float64))
    base = np.hstack(blocks)
    widths = {g: a.shape[1] for g, a in precomputed.items()}
    names = feature_names(radii, groups, widths)
    base_names = base_feature_names(radii, groups, widths)
    parts = [base, _mean_over(base[:, [k for k, n in enumerate(base_names) if n not in _NOT_AGGREGATED]], edges, length)]
    if STRUCTURE in groups:
        context = base[:, [base_names.index(n) for n in CONTEXT_COLUMNS]]
        for r in radii:
            # Without a structure there is no spatial neighbourhood: the context stays at the zero default.
            parts.append(_mean_over(context, _radius_edges(distances, r), length) if chain is not None else np.zeros_like(context))
    return np.hstack(parts).astype(np.float32), names, edges


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


@dataclass(frozen=True)
class FeatureSettings:
    """What the features stage computes; the config's ``features`` section maps onto it."""

    radii: tuple[float, ...] = DEFAULT_RADII
    graph_radius: float = DEFAULT_GRAPH_RADIUS
    groups: tuple[str, ...] = DEFAULT_GROUPS
    precomputed: tuple[tuple[str, str], ...] = ()  # (group, folder of <id>.npy)
    distance_maps: str | None = None  # folder of <id>.npy Cα distance maps
    widths: tuple[tuple[str, int], ...] = ()  # filled in by build_feature_tables


def _protein_job(job) -> tuple:
    """(features, edges int32, graph source, edge geometry) or ("error", message) for one protein; never raises
    InputError."""
    protein_id, sequence, path, chain_id, settings = job
    try:
        chain = None
        if path and STRUCTURE in settings.groups:
            chain = read_chain_atoms(path, chain_id)
            _structure_sequence_check(path, protein_id, chain.sequence, sequence)
            check_ca_geometry(_distances(chain.ca), f"{path}: record {protein_id}")
        widths = dict(settings.widths)
        arrays = {g: load_feature_group(folder, g, protein_id, len(sequence), widths[g])
                  for g, folder in settings.precomputed if g in settings.groups}
        distances = load_distance_map(settings.distance_maps, protein_id, len(sequence)) if settings.distance_maps else None
        if distances is not None:
            check_ca_geometry(distances, f"{feature_path(settings.distance_maps, protein_id)}: record {protein_id}")
        x, _, edges = protein_features(sequence, chain, settings.radii, settings.graph_radius, groups=settings.groups,
                                       precomputed=arrays, distances=distances)
        # The edge geometry follows the graph protein_features built: from the structure when it was used, else
        # from the distance map.
        geometry = edge_geometry(edges, distances, chain.backbone if chain is not None else None)
    except InputError as err:
        return "error", str(err)
    if chain is not None:
        source = "structure"
    elif distances is not None:
        unknown = unknown_distance_pairs(distances)
        source = f"distance map ({unknown} residue pairs with unknown distance)" if unknown else "distance map"
    else:
        source = "sequence"
    return x, edges.astype(np.int32), source, geometry  # int32 halves what workers send back


def _init_worker() -> None:
    # Workers already run in parallel; nested torch threads would only oversubscribe the cores.
    torch.set_num_threads(1)


def _text_or_none(value) -> str | None:
    # Missing values arrive as None, "" or NaN depending on how the table was built.
    return value if isinstance(value, str) and value else None


def _run_jobs(jobs: list, threads: int, progress) -> list:
    parallel = threads > 1 and len(jobs) > 1
    with ProcessPoolExecutor(threads, initializer=_init_worker) if parallel else contextlib.nullcontext() as pool:
        if pool is None:
            results = map(_protein_job, jobs)
        else:
            # Small chunks: protein sizes vary 30-fold, so big chunks leave one worker with the long tail.
            results = pool.map(_protein_job, jobs, chunksize=max(1, len(jobs) // (threads * 16)))
        if progress:
            results = tqdm(results, total=len(jobs), file=sys.stderr, mininterval=5.0, desc="features")
        return list(results)


def _group_width(folder: str, group: str, ids: list[str]) -> int:
    """Width of a precomputed group, from the first protein that has a file (a missing one may be skipped later)."""
    present = next((pid for pid in ids if feature_path(folder, pid).is_file()), ids[0])
    return group_width(folder, group, present)


def _with_widths(settings: FeatureSettings, ids: list[str]) -> FeatureSettings:
    selected = [(g, folder) for g, folder in settings.precomputed if g in settings.groups]
    widths = tuple((g, _group_width(folder, g, ids)) for g, folder in selected) if ids else ()
    return replace(settings, widths=widths)


def build_feature_tables(
    proteins: pd.DataFrame,
    radii=DEFAULT_RADII,
    graph_radius: float = DEFAULT_GRAPH_RADIUS,
    threads: int = 1,
    progress=None,
    *,
    groups=DEFAULT_GROUPS,
    precomputed: dict[str, str] | None = None,
    distance_maps: str | None = None,
    invalid_protein: str = "error",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (residues, edges) tables for ``proteins`` (protein_id, sequence, labels, split, structure_path, chain).

    ``invalid_protein="skip"`` drops a protein whose structure or feature files are bad (logged and counted) instead
    of stopping. Output is identical for any ``threads``: proteins are processed independently, collected in order.
    """
    _check_radii(radii, graph_radius)
    groups = check_groups(groups, precomputed)
    if invalid_protein not in ("error", "skip"):
        raise InputError(f"config features.invalid_protein: expected 'error' or 'skip', got {invalid_protein!r}")
    ids = [str(p) for p in proteins["protein_id"]]
    sequences = [str(s) for s in proteins["sequence"]]
    labels = [str(s) for s in proteins["labels"]]
    for pid, seq, lab in zip(ids, sequences, labels):
        if len(seq) != len(lab) or set(lab) - {"0", "1"}:
            raise InputError(
                f"record {pid}: labels must be one 0/1 per residue ({len(seq)} residues, {len(lab)} labels)"
            )
    settings = FeatureSettings(tuple(radii), graph_radius, groups, tuple((precomputed or {}).items()), distance_maps)
    settings = _with_widths(settings, ids)
    jobs = [
        (pid, seq, _text_or_none(path), _text_or_none(chain), settings)
        for pid, seq, path, chain in zip(ids, sequences, proteins["structure_path"], proteins["chain"])
    ]
    results = _run_jobs(jobs, threads, progress)
    keep = _report_outcomes(ids, results, invalid_protein)
    return _assemble(
        [ids[k] for k in keep], [sequences[k] for k in keep], [labels[k] for k in keep],
        [str(proteins["split"].iloc[k]) for k in keep], [results[k] for k in keep],
        feature_names(radii, groups, dict(settings.widths)),
    )


def _report_outcomes(ids: list[str], results: list, invalid_protein: str) -> list[int]:
    """Indices of the proteins that produced features; errors stop the run or are logged and counted."""
    keep, skipped = [], 0
    for k, result in enumerate(results):
        if isinstance(result[0], str):  # ("error", message)
            if invalid_protein == "error":
                raise InputError(result[1])
            log.warning("skipping protein %s: %s", ids[k], result[1])
            skipped += 1
            continue
        if result[2] == "sequence":
            log.info("protein %s: no structure or distance map, sequence-neighbour graph", ids[k])
        elif "unknown" in result[2]:
            log.info("protein %s: %s; those pairs get no edge", ids[k], result[2])
        keep.append(k)
    if skipped:
        log.warning("skipped %d of %d proteins with invalid input (features.invalid_protein: skip)", skipped, len(ids))
    counts = pd.Series([results[k][2].split(" (")[0] for k in keep], dtype=object).value_counts().to_dict()
    log.info("residue graphs by source: %s", counts)
    return keep


def _assemble(ids, sequences, labels, splits, results, names) -> tuple[pd.DataFrame, pd.DataFrame]:
    lengths = [len(s) for s in sequences]
    features = np.concatenate([r[0] for r in results]) if results else np.zeros((0, len(names)), np.float32)
    residues = pd.DataFrame({
        "protein_id": np.repeat(np.array(ids, dtype=object), lengths),
        "position": np.concatenate([np.arange(n, dtype=np.int32) for n in lengths] or [np.zeros(0, np.int32)]),
        "residue": np.array(list("".join(sequences)), dtype=object),
        "label": (np.frombuffer("".join(labels).encode(), dtype=np.uint8) - ord("0")).astype(np.int8),
        "split": np.repeat(np.array(splits, dtype=object), lengths),
    })
    residues = pd.concat([residues, pd.DataFrame(features, columns=[f"{FEATURE_PREFIX}{n}" for n in names])], axis=1)

    edge_index = np.concatenate([r[1] for r in results], axis=1) if results else np.zeros((2, 0), np.int64)
    geometry = (np.concatenate([r[3] for r in results]) if results
                else np.zeros((0, len(EDGE_GEOMETRY_COLUMNS)), np.float32))
    edges = pd.DataFrame({
        "protein_id": np.repeat(np.array(ids, dtype=object), [r[1].shape[1] for r in results]),
        "src": edge_index[0].astype(np.int32),
        "dst": edge_index[1].astype(np.int32),
        **{name: geometry[:, k] for k, name in enumerate(EDGE_GEOMETRY_COLUMNS)},
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
