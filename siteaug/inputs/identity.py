"""Sequence identity between proteins, so that the same (or nearly the same) protein never sits on both sides of a split.

Identity of two sequences is a semi-global alignment score over the length of the shorter one: +1 per identical
aligned pair, 0 per mismatch, -1 per gap position inside the alignment, and free end gaps in the longer sequence (a
fragment of a protein counts as that protein, as in CD-HIT's identity over the shorter sequence). Identical sequences
score 1; the score never exceeds the fraction of identical aligned pairs, so gaps only lower it. Unrelated sequences
score near 0.1 (random sequences of 50-500 residues: at most 0.2), so thresholds of 0.5 and above are meaningful.

Aligning every pair is quadratic in the number of proteins and in their lengths, so candidate pairs are found first
without alignment and without false negatives (the q-gram lemma): a score >= t on the shorter sequence a allows at
most d = floor((1 - t) * len(a)) mismatches and gap positions, each touches at most K of a's K-mers, so at least
len(a) - K + 1 - K * d positions of a start a K-mer that also occurs in b. Only pairs that reach this count are
aligned.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)

K = 4  # K-mer length of the candidate search: 20^4 = 160,000 K-mers, so unrelated proteins share few of them
_BLOCK = 512  # queries per dense block of shared K-mer counts (memory: 2 x 512 x targets x 8 bytes)
_LETTERS = {c: i for i, c in enumerate("ACDEFGHIKLMNPQRSTVWYX")}


def alignment_identity(a: str, b: str) -> float:
    """Semi-global alignment score of ``a`` and ``b`` (+1 identical pair, 0 mismatch, -1 gap, end gaps free in the longer
    one) over the length of the shorter one, at least 0; 1.0 for identical sequences.

    Row-by-row dynamic programme, each row vectorised: with a linear gap cost the best score ending at column j of a
    row is a running maximum, max_k (E[k] - (j - k)) = cummax(E[k] + k) - j.
    """
    if len(a) > len(b):
        a, b = b, a
    if not a:
        return 0.0
    codes_b = np.frombuffer(b.encode(), dtype=np.uint8)
    index = np.arange(len(b) + 1, dtype=np.int32)
    row = np.zeros(len(b) + 1, dtype=np.int32)  # leading gap in b: free
    for i, letter in enumerate(a.encode(), 1):
        best = np.empty_like(row)
        best[0] = -i  # a's first i residues against nothing
        best[1:] = np.maximum(row[:-1] + (codes_b == letter), row[1:] - 1)
        row = np.maximum.accumulate(best + index) - index
    return max(0.0, float(row.max()) / len(a))  # trailing gap in b: free


def _kmer_matrices(sequences: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(positions, presence): per sequence, how many positions start each K-mer, and whether it occurs at all."""
    rows, cols = [], []
    for index, sequence in enumerate(sequences):
        codes = np.array([_LETTERS.get(c, 20) for c in sequence], dtype=np.int64)
        if len(codes) < K:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, K)
        kmers = windows @ (21 ** np.arange(K - 1, -1, -1))
        rows.append(np.full(len(kmers), index))
        cols.append(kmers)
    shape = (len(sequences), 21**K)
    if not rows:
        empty = sp.csr_matrix(shape, dtype=np.int32)
        return empty, empty
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    positions = sp.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=shape)
    positions.sum_duplicates()
    presence = positions.copy()
    presence.data[:] = 1
    return positions, presence


def similar_pairs(queries: list[str], targets: list[str] | None, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (i, j, identity) with identity >= ``threshold``: i in ``queries``, j in ``targets``.

    ``targets=None`` compares ``queries`` among themselves and returns each pair once, i < j.
    """
    same = targets is None
    targets = queries if same else targets
    q_positions, q_presence = _kmer_matrices(queries)
    t_positions, t_presence = _kmer_matrices(targets)
    q_len = np.array([len(s) for s in queries])
    t_len = np.array([len(s) for s in targets])
    found = []
    for block in range(0, len(queries), _BLOCK):  # dense shared-count rows, _BLOCK queries at a time
        rows = slice(block, min(block + _BLOCK, len(queries)))
        # positions of query i whose K-mer occurs in target j, and of target j whose K-mer occurs in query i
        q_in_t = (q_positions[rows] @ t_presence.T).toarray()
        t_in_q = (q_presence[rows] @ t_positions.T).toarray()
        for r, i in enumerate(range(rows.start, rows.stop)):
            js = np.arange(i + 1 if same else 0, len(targets))
            if not len(js):
                continue
            shorter_is_query = q_len[i] <= t_len[js]
            shorter = np.where(shorter_is_query, q_len[i], t_len[js])
            shared = np.where(shorter_is_query, q_in_t[r, js], t_in_q[r, js])
            bound = shorter - K + 1 - K * np.floor((1 - threshold) * shorter + 1e-9)
            for j in js[shared >= bound]:
                identity = 1.0 if queries[i] == targets[j] else alignment_identity(queries[i], targets[j])
                if identity >= threshold:
                    found.append((i, int(j), identity))
    return found


def identity_groups(ids: list[str], sequences: list[str], threshold: float | None) -> list[int]:
    """Group index of every protein: connected components of identity >= ``threshold`` (identical sequences only when
    ``threshold`` is None). Each group is numbered by its first member; every merge is logged."""
    parent = list(range(len(ids)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    if threshold is None:
        first: dict[str, int] = {}
        pairs = []
        for k, sequence in enumerate(sequences):
            if sequence in first:
                pairs.append((first[sequence], k, 1.0))
            else:
                first[sequence] = k
    else:
        pairs = similar_pairs(sequences, None, threshold)
    for i, j, identity in pairs:
        what = "identical sequences" if identity == 1.0 and sequences[i] == sequences[j] else f"sequence identity {identity:.3f}"
        log.info("proteins %s and %s share a split group (%s)", ids[i], ids[j], what)
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups = [root(k) for k in range(len(ids))]
    sizes = np.bincount(groups, minlength=len(ids))
    if (sizes > 1).any():
        log.info("%d proteins in %d groups of identical or near-identical sequences; each group goes to one split",
                 int(sizes[sizes > 1].sum()), int((sizes > 1).sum()))
    return groups
