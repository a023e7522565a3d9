"""A seeded demo dataset: synthetic proteins written as real PDB files plus a label FASTA.

The planted signal mimics a nucleic-acid binding patch: one surface patch per protein is enriched in R/K/H/Y/S/N/G
and labelled positive, so both sequence features and spatial neighbourhood features carry learnable information.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from siteaug.runtime.io import AMINO_ACIDS, write_text

THREE_LETTER = dict(zip(AMINO_ACIDS, "ALA CYS ASP GLU PHE GLY HIS ILE LYS LEU MET ASN PRO GLN ARG SER THR VAL TRP TYR".split()))
_BACKGROUND = np.array([8.3, 1.4, 5.5, 6.7, 3.9, 7.1, 2.3, 5.9, 5.8, 9.7, 2.4, 4.1, 4.7, 3.9, 5.3, 6.6, 5.3, 6.9, 1.1, 2.9])
_SITE_ENRICHMENT = {"R": 4.0, "K": 4.0, "H": 2.5, "Y": 2.0, "S": 1.8, "N": 1.8, "G": 1.5, "T": 1.4}
_SITE = _BACKGROUND * np.array([_SITE_ENRICHMENT.get(a, 0.5) for a in AMINO_ACIDS])


def ca_trace(length: int, rng: np.random.Generator) -> np.ndarray:
    """A compact self-avoiding Cα walk with 3.8 Å steps, pulled towards its centroid like a globule."""
    ca = np.zeros((length, 3))
    direction = np.array([1.0, 0.0, 0.0])
    for i in range(1, length):
        centre = ca[:i].mean(axis=0)
        for _ in range(60):
            step = direction + rng.normal(scale=0.9, size=3) + 0.15 * (centre - ca[i - 1]) / (1 + np.linalg.norm(centre - ca[i - 1]))
            step *= 3.8 / np.linalg.norm(step)
            candidate = ca[i - 1] + step
            if i < 3 or np.min(np.linalg.norm(ca[: i - 1] - candidate, axis=1)) > 4.0:
                break
        ca[i] = candidate
        direction = step / 3.8
    return ca - ca.mean(axis=0)


def backbone_atoms(ca: np.ndarray) -> dict[str, np.ndarray]:
    """Approximate N, C and O positions around each Cα so the files look like ordinary backbone models."""
    forward = np.diff(ca, axis=0, append=ca[-1:] + (ca[-1:] - ca[-2:-1]))
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    side = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    side /= np.maximum(np.linalg.norm(side, axis=1, keepdims=True), 1e-6)
    c = ca + 1.52 * forward
    return {"N": ca - 1.46 * forward, "CA": ca, "C": c, "O": c + 1.23 * side}


def pdb_text(sequence: str, atoms: dict[str, np.ndarray], chain: str = "A") -> str:
    lines, serial = [], 1
    for i, aa in enumerate(sequence):
        for name in ("N", "CA", "C", "O"):
            x, y, z = atoms[name][i]
            lines.append(
                f"ATOM  {serial:5d}  {name:<3s} {THREE_LETTER[aa]} {chain}{i + 1:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {name[0]}  "
            )
            serial += 1
    lines += ["TER", "END", ""]
    return "\n".join(lines)


def demo_protein(length: int, rng: np.random.Generator) -> tuple[str, str, np.ndarray]:
    ca = ca_trace(length, rng)
    # The site centre is the residue farthest from the centroid: a surface patch.
    centre = int(np.argmax(np.linalg.norm(ca, axis=1)))
    in_patch = np.linalg.norm(ca - ca[centre], axis=1) < rng.uniform(12.0, 15.0)
    labels = (in_patch & (rng.random(length) < 0.85)) | (rng.random(length) < 0.01)
    sequence = "".join(
        AMINO_ACIDS[rng.choice(20, p=(_SITE if site else _BACKGROUND) / (_SITE if site else _BACKGROUND).sum())]
        for site in labels
    )
    return sequence, "".join("1" if site else "0" for site in labels), ca


def make_demo(out_dir: str | Path, n_proteins: int, min_length: int, max_length: int, seed: int) -> None:
    """Write ``out_dir/labels.fa`` and ``out_dir/pdb/<id>.pdb`` for ``n_proteins`` seeded proteins."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    records = []
    for index in range(n_proteins):
        protein_id = f"demo{index:04d}_A"
        sequence, labels, ca = demo_protein(int(rng.integers(min_length, max_length + 1)), rng)
        write_text(pdb_text(sequence, backbone_atoms(ca)), out_dir / "pdb" / f"{protein_id}.pdb")
        records.append(f">{protein_id}\n{sequence}\n{labels}\n")
    write_text("".join(records), out_dir / "labels.fa")
