"""Minimal fixed-column PDB reader: one chain's sequence and Cα trace.

Hand-rolled rather than Biopython because it only needs ATOM records and must parse hundreds of files in seconds.
"""
from __future__ import annotations

import os

import numpy as np

from siteaug.io import InputError

THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H",
    "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S", "THR": "T", "TRP": "W",
    "TYR": "Y", "VAL": "V",
    # Selenomethionine replaces Met in phased crystal structures; sequence databases record it as M.
    "MSE": "M",
}


def chain_from_id(protein_id: str) -> str | None:
    """``"1abc_A"`` -> ``"A"``; ids without an ``_<chain>`` suffix give None."""
    stem, sep, chain = protein_id.rpartition("_")
    return chain if sep and stem and chain else None


def read_ca_trace(path: str | os.PathLike, chain: str | None = None) -> tuple[str, np.ndarray]:
    """Return (one-letter sequence, Cα coordinates float64 (L, 3)) of one chain of the first model.

    ``chain`` absent from a single-chain file falls back to that chain (AlphaFold models call every chain 'A').
    """
    # chain -> {(resSeq, iCode): [resname, chosen altloc, CA xyz or None]}, in file order
    chains: dict[str, dict[tuple[str, str], list]] = {}
    try:
        handle = open(path, encoding="ascii", errors="replace")
    except OSError as err:
        raise InputError(f"{path}: cannot open structure file ({err.strerror})") from None
    with handle:
        for line_no, line in enumerate(handle, 1):
            record = line[:6]
            if record == "ENDMDL":
                break
            if record != "ATOM  " and not (record == "HETATM" and line[17:20] == "MSE"):
                continue
            # z ends with a digit at column 54: anything else means the line was cut or garbled. Only CA
            # coordinates are converted (the rest are never used), which halves the parse time.
            if not line[53:54].isdigit():
                raise InputError(f"{path}: line {line_no}: truncated or garbled atom coordinates")
            key = (line[22:26].strip(), line[26])
            residues = chains.setdefault(line[21], {})
            residue = residues.get(key)
            if residue is None:
                residue = residues[key] = [line[17:20].strip(), None, None]
            altloc = line[16]
            if altloc != " ":
                if residue[1] is None:
                    residue[1] = altloc
                elif altloc != residue[1]:
                    continue
            if residue[2] is None and line[12:16].strip() == "CA":
                try:
                    residue[2] = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
                except ValueError:
                    raise InputError(f"{path}: line {line_no}: unparsable CA coordinates") from None

    if not chains:
        raise InputError(f"{path}: no ATOM records in the first model")
    if chain is None:
        chain = next(iter(chains))
    elif chain not in chains:
        if len(chains) != 1:
            raise InputError(f"{path}: chain {chain!r} not found; chains present: {', '.join(map(repr, chains))}")
        chain = next(iter(chains))
    residues = chains[chain]
    sequence, coords = [], []
    for (resseq, icode), (resname, _, ca) in residues.items():
        if ca is None:
            raise InputError(f"{path}: residue {resname} {resseq}{icode.strip()} of chain {chain} has no CA atom")
        sequence.append(THREE_TO_ONE.get(resname, "X"))
        coords.append(ca)
    return "".join(sequence), np.asarray(coords, dtype=np.float64).reshape(-1, 3)
