"""Minimal fixed-column PDB reader: one chain's sequence, Cα trace, or heavy atoms of the first model.

Hand-rolled rather than Biopython because it only needs ATOM records and must parse hundreds of files in seconds.
Handles what real files hold: alternate locations (blank or the first one seen per residue is kept), insertion codes
(distinct residues), HETATM ligands and water (skipped; MSE kept as Met), hydrogens (skipped) and several chains.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from siteaug.runtime.io import InputError

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H",
    "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S", "THR": "T", "TRP": "W",
    "TYR": "Y", "VAL": "V",
    # Selenomethionine replaces Met in phased crystal structures; sequence databases record it as M.
    "MSE": "M",
}
BACKBONE_ATOMS = ("N", "CA", "C", "O")


@dataclass(frozen=True)
class ChainAtoms:
    """Heavy atoms of one chain. Residue k owns atoms ``atom_residue == k``; ``backbone`` is (L, 4, 3) N/CA/C/O."""

    path: str
    chain: str
    sequence: str
    residue_names: tuple[str, ...]  # three-letter names, in residue order
    residue_labels: tuple[str, ...]  # "GLY 52A" (resname, resSeq and insertion code) for error messages
    atom_names: tuple[str, ...]
    atom_elements: tuple[str, ...]
    atom_residue: np.ndarray  # (A,) int64
    atom_xyz: np.ndarray  # (A, 3) float64
    backbone: np.ndarray  # (L, 4, 3) float64
    cb: np.ndarray  # (L, 3) float64; NaN where the file has no CB (Gly, or a truncated side chain)

    @property
    def ca(self) -> np.ndarray:
        return self.backbone[:, 1]


def chain_from_id(protein_id: str) -> str | None:
    """``"1abc_A"`` -> ``"A"``; ids without an ``_<chain>`` suffix give None."""
    stem, sep, chain = protein_id.rpartition("_")
    return chain if sep and stem and chain else None


def _is_hydrogen(line: str, name: str) -> bool:
    element = line[76:78].strip()
    if element:
        return element in ("H", "D")
    return name.lstrip("0123456789")[:1] in ("H", "D")


def _xyz(line: str, path, line_no: int, name: str) -> tuple[float, float, float]:
    try:
        return float(line[30:38]), float(line[38:46]), float(line[46:54])
    except ValueError:
        raise InputError(f"{path}: line {line_no}: unparsable {name} coordinates") from None


def _read_residues(path, all_atoms: bool) -> dict[str, dict[tuple[str, str], list]]:
    """chain -> {(resSeq, iCode): [resname, chosen altloc, {atom name: (xyz, element)}]}, in file order.

    With ``all_atoms`` False only CA coordinates are converted (the rest are never used), which halves the parse time.
    """
    chains: dict[str, dict[tuple[str, str], list]] = {}
    try:
        with open(path, "rb") as raw:
            bom = raw.read(3) == b"\xef\xbb\xbf"
        handle = open(path, encoding="ascii", errors="replace")
    except OSError as err:
        raise InputError(f"{path}: cannot open structure file ({err.strerror})") from None
    with handle:
        if bom:  # a UTF-8 byte-order mark would hide the first line's record name; one byte per character here
            handle.read(3)
        for line_no, line in enumerate(handle, 1):
            record = line[:6]
            if record == "ENDMDL":
                break
            if record != "ATOM  " and not (record == "HETATM" and line[17:20] == "MSE"):
                continue
            # z ends with a digit at column 54: anything else means the line was cut or garbled.
            if not line[53:54].isdigit():
                raise InputError(f"{path}: line {line_no}: truncated or garbled atom coordinates")
            key = (line[22:26].strip(), line[26])
            residues = chains.setdefault(line[21], {})
            residue = residues.get(key)
            if residue is None:
                residue = residues[key] = [line[17:20].strip(), None, {}]
            altloc = line[16]
            if altloc != " ":
                if residue[1] is None:
                    residue[1] = altloc
                elif altloc != residue[1]:
                    continue
            name = line[12:16].strip()
            if name in residue[2] or not (name == "CA" or (all_atoms and not _is_hydrogen(line, name))):
                continue
            element = line[76:78].strip() or name.lstrip("0123456789")[:1]
            residue[2][name] = (_xyz(line, path, line_no, name), element.upper())
    if not chains:
        raise InputError(f"{path}: no ATOM records in the first model")
    return chains


def _select_chain(chains: dict, chain: str | None, path) -> str:
    """``chain`` absent from a single-chain file falls back to that chain (AlphaFold models call every chain 'A')."""
    if chain is None:
        return next(iter(chains))
    if chain not in chains:
        if len(chains) != 1:
            raise InputError(f"{path}: chain {chain!r} not found; chains present: {', '.join(map(repr, chains))}")
        return next(iter(chains))
    return chain


def _label(resname: str, resseq: str, icode: str) -> str:
    return f"{resname} {resseq}{icode.strip()}"


def read_ca_trace(path: str | os.PathLike, chain: str | None = None) -> tuple[str, np.ndarray]:
    """Return (one-letter sequence, Cα coordinates float64 (L, 3)) of one chain of the first model."""
    chains = _read_residues(path, all_atoms=False)
    chain = _select_chain(chains, chain, path)
    sequence, coords = [], []
    for (resseq, icode), (resname, _, atoms) in chains[chain].items():
        if "CA" not in atoms:
            raise InputError(f"{path}: residue {_label(resname, resseq, icode)} of chain {chain} has no CA atom")
        sequence.append(THREE_TO_ONE.get(resname, "X"))
        coords.append(atoms["CA"][0])
    return "".join(sequence), np.asarray(coords, dtype=np.float64).reshape(-1, 3)


def read_chain_atoms(path: str | os.PathLike, chain: str | None = None) -> ChainAtoms:
    """Heavy atoms of one chain of the first model; every residue must have N, CA, C and O (else InputError).

    Missing side-chain atoms are allowed: the structure features use a virtual Cβ where CB is absent.
    """
    chains = _read_residues(path, all_atoms=True)
    chain = _select_chain(chains, chain, path)
    names, labels, atom_names, elements, owner, xyz, backbone, cb = [], [], [], [], [], [], [], []
    for k, ((resseq, icode), (resname, _, atoms)) in enumerate(chains[chain].items()):
        label = _label(resname, resseq, icode)
        missing = [a for a in BACKBONE_ATOMS if a not in atoms]
        if missing:
            raise InputError(
                f"{path}: residue {label} of chain {chain} lacks backbone atom(s) {', '.join(missing)}"
            )
        names.append(resname)
        labels.append(label)
        backbone.append([atoms[a][0] for a in BACKBONE_ATOMS])
        cb.append(atoms["CB"][0] if "CB" in atoms else (np.nan,) * 3)
        for name, (coords, element) in atoms.items():
            atom_names.append(name)
            elements.append(element)
            owner.append(k)
            xyz.append(coords)
    return ChainAtoms(
        path=str(path),
        chain=chain,
        sequence="".join(THREE_TO_ONE.get(n, "X") for n in names),
        residue_names=tuple(names),
        residue_labels=tuple(labels),
        atom_names=tuple(atom_names),
        atom_elements=tuple(elements),
        atom_residue=np.asarray(owner, dtype=np.int64),
        atom_xyz=np.asarray(xyz, dtype=np.float64).reshape(-1, 3),
        backbone=np.asarray(backbone, dtype=np.float64).reshape(-1, 4, 3),
        cb=np.asarray(cb, dtype=np.float64).reshape(-1, 3),
    )


# Neighbouring Cα atoms sit 3.8 Å apart (2.9 Å across a cis peptide); chain breaks only lengthen a few steps, so the
# median step is 3.80-3.90 Å in every DNA-573 model and PPI-335 distance map. No two Cα atoms come within 2.5 Å there.
CA_STEP_RANGE = (3.0, 4.5)
CA_MIN_SEPARATION = 1.0


def check_ca_geometry(distances: np.ndarray, where: str) -> None:
    """InputError (``where``: file and record) for Cα coordinates no protein can have: all at one point, two atoms
    overlapping (closer than 1 Å), or collapsed / rescaled chains (median neighbour step outside 3.0-4.5 Å).

    ``distances`` is the (L, L) Cα distance matrix; unknown distances are +inf and the diagonal is ignored.
    """
    length = len(distances)
    if length < 2:
        return
    off = distances[~np.eye(length, dtype=bool)]
    known = off[np.isfinite(off)]
    if len(known) and known.max() == 0:
        raise InputError(f"{where}: all {length} Cα atoms are at one point (degenerate coordinates)")
    steps = np.diagonal(distances, 1)
    steps = steps[np.isfinite(steps)]
    if len(steps):
        median = float(np.median(steps))
        low, high = CA_STEP_RANGE
        if not low <= median <= high:
            raise InputError(
                f"{where}: median Cα-Cα distance of sequence neighbours is {median:.2f} Å, expected about 3.8 "
                f"({low:g}-{high:g}): collapsed or rescaled coordinates"
            )
    masked = np.where(np.eye(length, dtype=bool), np.inf, distances)
    i, j = np.unravel_index(np.argmin(masked), masked.shape)
    if masked[i, j] < CA_MIN_SEPARATION:
        raise InputError(
            f"{where}: Cα atoms of residues {min(i, j) + 1} and {max(i, j) + 1} are {masked[i, j]:.2f} Å apart "
            f"(overlapping atoms; at least {CA_MIN_SEPARATION:g} Å expected)"
        )
