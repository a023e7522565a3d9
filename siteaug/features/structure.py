"""Per-residue structure descriptors from one chain's heavy atoms.

- secondary structure (3-state DSSP: helix, strand, coil) from the backbone hydrogen-bond energy, by pydssp's numpy
  backend (chosen over Debian's mkdssp by a measured comparison, see bench/RESULTS.md);
- sin/cos of the backbone dihedrals φ and ψ (0, 0 where undefined: chain ends and chain breaks);
- relative solvent accessibility: Shrake–Rupley SASA (freesasa, ProtOr radii) of the chain on its own, divided by the
  theoretical maximum of Tien et al. 2013;
- half-sphere exposure (Hamelryck 2005): Cα atoms within 13 Å in the half sphere the Cα→Cβ vector points into (up)
  and in the other half (down), with a virtual Cβ where the file has none (Gly, truncated side chains);
- contact number: Cβ atoms (virtual where absent) within 10 Å of the residue's Cβ.
"""
from __future__ import annotations

import functools

import freesasa
import numpy as np
import pydssp

from siteaug.inputs.pdb import ChainAtoms
from siteaug.runtime.io import InputError

# Tien et al. 2013, PLoS ONE 8:e80635, theoretical maximum ASA (Å²) of residue X in a Gly-X-Gly tripeptide.
MAX_ASA_TIEN2013 = {
    "A": 129.0, "R": 274.0, "N": 195.0, "D": 193.0, "C": 167.0, "Q": 225.0, "E": 223.0, "G": 104.0, "H": 224.0,
    "I": 197.0, "L": 201.0, "K": 236.0, "M": 224.0, "F": 240.0, "P": 159.0, "S": 155.0, "T": 172.0, "W": 285.0,
    "Y": 263.0, "V": 174.0,
}
# Unknown residues (X) are scaled by the mean maximum.
_MAX_ASA_X = float(np.mean(list(MAX_ASA_TIEN2013.values())))
HSE_RADIUS = 13.0
CONTACT_RADIUS = 10.0
# Bondi van der Waals radii for atoms freesasa's ProtOr classifier does not know (non-standard residues).
_ELEMENT_RADIUS = {"C": 1.70, "N": 1.55, "O": 1.52, "S": 1.80, "SE": 1.90, "P": 1.80}
_DEFAULT_RADIUS = 1.80
_PEPTIDE_BOND_MAX = 2.0  # Å; a longer C(i-1)–N(i) distance is a chain break
_BOND_REACH = 3.0  # Å; every atom of a real residue has a bonded partner (≤ 2 Å) in it, well within this

STRUCTURE_COLUMNS = [
    "ss_helix", "ss_strand", "ss_coil", "phi_sin", "phi_cos", "psi_sin", "psi_cos", "rsa", "hse_up", "hse_down",
    "contact_number",
]
# Exposure and secondary-structure columns whose means over spatial neighbourhoods form the context features.
CONTEXT_COLUMNS = ["ss_helix", "ss_strand", "ss_coil", "rsa", "hse_up", "hse_down", "contact_number"]


def _dihedral(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """Dihedral angles (radians) of the rows of four (N, 3) point arrays."""
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
    v = b0 - np.sum(b0 * b1, axis=1, keepdims=True) * b1
    w = b2 - np.sum(b2 * b1, axis=1, keepdims=True) * b1
    x = np.sum(v * w, axis=1)
    y = np.sum(np.cross(b1, v) * w, axis=1)
    return np.arctan2(y, x)


def backbone_dihedrals(backbone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(φ, ψ) in radians, NaN where undefined (first φ, last ψ, either side of a chain break)."""
    n, ca, c = backbone[:, 0], backbone[:, 1], backbone[:, 2]
    length = len(backbone)
    phi, psi = np.full(length, np.nan), np.full(length, np.nan)
    if length > 1:
        linked = np.linalg.norm(n[1:] - c[:-1], axis=1) <= _PEPTIDE_BOND_MAX
        phi[1:] = np.where(linked, _dihedral(c[:-1], n[1:], ca[1:], c[1:]), np.nan)
        psi[:-1] = np.where(linked, _dihedral(n[:-1], ca[:-1], c[:-1], n[1:]), np.nan)
    return phi, psi


def secondary_structure(backbone: np.ndarray, sequence: str) -> np.ndarray:
    """(L, 3) one-hot helix / strand / coil by pydssp (proline has no amide H, so it donates no hydrogen bond)."""
    if len(backbone) < 6:  # pydssp's turn and bridge windows need a few residues; so short a chain is coil
        return np.tile([0.0, 0.0, 1.0], (len(backbone), 1))
    donor = np.array([aa != "P" for aa in sequence], dtype=float)
    loop_helix_strand = pydssp.assign(np.ascontiguousarray(backbone), donor_mask=donor, out_type="onehot")
    return np.asarray(loop_helix_strand, dtype=np.float64)[:, [1, 2, 0]]


@functools.cache
def _classifier() -> freesasa.Classifier:
    return freesasa.Classifier()


@functools.lru_cache(maxsize=4096)
def _atom_radius(resname: str, atom: str, element: str) -> float:
    radius = _classifier().radius(resname, atom)
    return radius if radius > 0 else _ELEMENT_RADIUS.get(element, _DEFAULT_RADIUS)


def _check_no_stray_atoms(chain: ChainAtoms) -> None:
    """Every atom lies within bonding reach of another atom of its residue.

    freesasa 2.2.1's Shrake–Rupley crashes the process (segfault) on an atom with no neighbour at all; a covalently
    bonded atom always has one, so a stray atom means garbled coordinates and becomes an InputError instead.
    """
    owner = chain.atom_residue
    starts = np.searchsorted(owner, np.arange(len(chain.sequence)))
    slot = np.arange(len(owner)) - starts[owner]
    padded = np.full((len(chain.sequence), int(slot.max()) + 1 if len(slot) else 1, 3), np.nan)
    padded[owner, slot] = chain.atom_xyz
    d = np.sqrt(((padded[:, :, None] - padded[:, None, :]) ** 2).sum(-1))
    d[:, np.arange(d.shape[1]), np.arange(d.shape[1])] = np.inf
    nearest = np.nanmin(np.where(np.isnan(d), np.inf, d), axis=2)[owner, slot]
    stray = np.flatnonzero(nearest > _BOND_REACH)
    if len(stray):
        k = stray[0]
        raise InputError(
            f"{chain.path}: residue {chain.residue_labels[owner[k]]} of chain {chain.chain}: atom "
            f"{chain.atom_names[k]} is {nearest[k]:.1f} Å from every other atom of its residue (garbled coordinates)"
        )


def residue_sasa(chain: ChainAtoms) -> np.ndarray:
    """Absolute SASA (Å²) per residue: Shrake–Rupley, 100 points per atom, probe 1.4 Å, the chain on its own."""
    _check_no_stray_atoms(chain)
    radii = [
        _atom_radius(chain.residue_names[k], name, element)
        for k, name, element in zip(chain.atom_residue.tolist(), chain.atom_names, chain.atom_elements)
    ]
    # Workers already run in parallel, so freesasa gets one thread.
    parameters = freesasa.Parameters({"algorithm": freesasa.ShrakeRupley, "n-points": 100, "n-threads": 1})
    result = freesasa.calcCoord(chain.atom_xyz.ravel().tolist(), radii, parameters)
    areas = np.fromiter((result.atomArea(i) for i in range(len(radii))), dtype=np.float64, count=len(radii))
    return np.bincount(chain.atom_residue, weights=areas, minlength=len(chain.sequence))


def relative_accessibility(sasa: np.ndarray, sequence: str) -> np.ndarray:
    return sasa / np.array([MAX_ASA_TIEN2013.get(aa, _MAX_ASA_X) for aa in sequence])


def virtual_cb(backbone: np.ndarray) -> np.ndarray:
    """Ideal Cβ position from N, CA and C (the constants of Dauparas et al. 2022, ProteinMPNN)."""
    n, ca, c = backbone[:, 0], backbone[:, 1], backbone[:, 2]
    b, c_vec = ca - n, c - ca
    a = np.cross(b, c_vec)
    return -0.58273431 * a + 0.56802827 * b - 0.54067466 * c_vec + ca


def _pairwise(points: np.ndarray) -> np.ndarray:
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return d


def half_sphere_exposure(ca: np.ndarray, cb: np.ndarray, radius: float = HSE_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) counts of other Cα atoms within ``radius`` on the Cβ side of each residue and opposite it."""
    within = _pairwise(ca) <= radius
    towards = np.einsum("ijk,ik->ij", ca[None, :, :] - ca[:, None, :], cb - ca) > 0
    return (within & towards).sum(1).astype(np.float64), (within & ~towards).sum(1).astype(np.float64)


def contact_number(cb: np.ndarray, radius: float = CONTACT_RADIUS) -> np.ndarray:
    return (_pairwise(cb) <= radius).sum(1).astype(np.float64)


def structure_descriptors(chain: ChainAtoms) -> np.ndarray:
    """(L, len(STRUCTURE_COLUMNS)) float64, NaN-free, in the order of STRUCTURE_COLUMNS."""
    backbone = chain.backbone
    cb = np.where(np.isnan(chain.cb), virtual_cb(backbone), chain.cb)
    phi, psi = backbone_dihedrals(backbone)
    angles = np.column_stack([np.sin(phi), np.cos(phi), np.sin(psi), np.cos(psi)])
    up, down = half_sphere_exposure(chain.ca, cb)
    out = np.column_stack([
        secondary_structure(backbone, chain.sequence),
        np.nan_to_num(angles, nan=0.0),  # undefined angle: sin = cos = 0, away from every real angle
        relative_accessibility(residue_sasa(chain), chain.sequence),
        up,
        down,
        contact_number(cb),
    ])
    return out
