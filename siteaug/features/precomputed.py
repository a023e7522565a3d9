"""Precomputed per-residue features and Cα distance maps stored as one ``<id>.npy`` per protein.

A feature group is a folder of (L, W) arrays, one per protein (PSSM, HMM profiles, DSSP encodings, or a protein
language model's embeddings); a distance map is an (L, L) array of Cα distances in Å. Every array is checked against
its record before use, and a bad one is an InputError naming the file, the record and, for non-finite values, the
residue.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from siteaug.runtime.io import InputError


def feature_path(folder: str | os.PathLike, protein_id: str) -> Path:
    return Path(folder) / f"{protein_id}.npy"


def _load(path: Path, protein_id: str, what: str, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: record {protein_id}: {what} file not found")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: record {protein_id}: unreadable .npy file ({str(err).splitlines()[0]})") from None


def _check_numeric_finite(array: np.ndarray, path: Path, protein_id: str) -> np.ndarray:
    if array.dtype.kind not in "fiu":
        raise InputError(f"{path}: record {protein_id}: dtype {array.dtype} is not a number type")
    values = np.asarray(array, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"{path}: record {protein_id}: non-finite value {values[row, col]} at residue {row + 1}, column {col + 1}"
        )
    return values


def group_width(folder: str | os.PathLike, group: str, protein_id: str) -> int:
    """Columns of ``group``, read from one protein's file header (every protein must have the same number)."""
    path = feature_path(folder, protein_id)
    array = _load(path, protein_id, f"feature group {group!r}", mmap=True)
    if array.ndim != 2:
        raise InputError(f"{path}: record {protein_id}: feature group {group!r} must be 2-D (L, W), got shape {array.shape}")
    if array.shape[1] == 0:
        raise InputError(f"{path}: record {protein_id}: feature group {group!r} has 0 columns (shape {array.shape}); "
                         "it would add no features")
    return int(array.shape[1])


def load_feature_group(folder: str | os.PathLike, group: str, protein_id: str, length: int, width: int) -> np.ndarray:
    """(length, width) float64 array of ``group`` for one protein, validated."""
    path = feature_path(folder, protein_id)
    array = _load(path, protein_id, f"feature group {group!r}")
    if array.ndim != 2:
        raise InputError(f"{path}: record {protein_id}: feature group {group!r} must be 2-D (L, W), got shape {array.shape}")
    if array.shape != (length, width):
        raise InputError(
            f"{path}: record {protein_id}: shape {array.shape} does not match the sequence length {length} "
            f"and the group's width {width}"
        )
    return _check_numeric_finite(array, path, protein_id)


def load_distance_map(folder: str | os.PathLike, protein_id: str, length: int) -> np.ndarray | None:
    """(length, length) float64 Cα distances, or None when the protein has no file (the caller logs the fallback).

    Negative entries mark unknown distances (GraphPPIS writes -1 for residues without Cα coordinates): they become
    +inf, so such pairs are never neighbours. :func:`unknown_distance_pairs` counts them for the log.
    """
    path = feature_path(folder, protein_id)
    if not path.is_file():
        return None
    array = _load(path, protein_id, "distance map")
    if array.shape != (length, length):
        raise InputError(
            f"{path}: record {protein_id}: distance map has shape {array.shape}, expected ({length}, {length})"
        )
    values = _check_numeric_finite(array, path, protein_id)
    values[values < 0] = np.inf
    return values


def unknown_distance_pairs(distances: np.ndarray) -> int:
    """Residue pairs (i < j) whose distance is unknown (marked negative in the file, loaded as +inf)."""
    return int(np.isinf(np.triu(distances, k=1)).sum())
