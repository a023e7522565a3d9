from pathlib import Path

import numpy as np
import pytest

from siteaug.features.structure import (
    MAX_ASA_TIEN2013,
    STRUCTURE_COLUMNS,
    backbone_dihedrals,
    contact_number,
    half_sphere_exposure,
    relative_accessibility,
    residue_sasa,
    secondary_structure,
    structure_descriptors,
    virtual_cb,
)
from siteaug.inputs.pdb import ChainAtoms, chain_from_id, read_chain_atoms
from siteaug.runtime.io import InputError

DNA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "graphsite_dna"


def atoms_chain(xyz, owner, names, resnames) -> ChainAtoms:
    """A ChainAtoms for SASA tests: only the atom arrays matter there."""
    length = len(resnames)
    return ChainAtoms(path="mem", chain="A", sequence="".join("G" if r == "GLY" else "A" for r in resnames),
                      residue_names=tuple(resnames), residue_labels=tuple(f"{r} {i}" for i, r in enumerate(resnames)),
                      atom_names=tuple(names), atom_elements=tuple(n[0] for n in names),
                      atom_residue=np.asarray(owner), atom_xyz=np.asarray(xyz, dtype=float),
                      backbone=np.zeros((length, 4, 3)), cb=np.full((length, 3), np.nan))


def real_chain(name="1a0a_A"):
    path = DNA / "pdb" / f"{name}.pdb"
    if not path.is_file():
        pytest.skip(f"real DNA-573 structures not found at {path.parent}")
    return read_chain_atoms(path, chain_from_id(name))


def test_sasa_of_separate_residues_and_of_touching_ones():
    # Two-atom residues (CA 1.88 Å, C 1.61 Å in ProtOr) 1.5 Å apart; the residues 40 Å from each other.
    pair = np.array([[0, 0, 0], [1.5, 0, 0]])
    far = atoms_chain(np.vstack([pair, pair + [40, 0, 0]]), [0, 0, 1, 1], ["CA", "C"] * 2, ["GLY", "GLY"])
    sasa = residue_sasa(far)
    assert sasa[0] == pytest.approx(sasa[1], rel=1e-9)
    spheres = 4 * np.pi * ((1.88 + 1.4) ** 2 + (1.61 + 1.4) ** 2)
    assert 0.5 * spheres < sasa[0] < spheres  # the bonded pair hides part of each sphere
    near = atoms_chain(np.vstack([pair, pair + [0, 3.0, 0]]), [0, 0, 1, 1], ["CA", "C"] * 2, ["GLY", "GLY"])
    assert (residue_sasa(near) < 0.9 * sasa).all()  # the residues now shield each other


def test_stray_atom_is_an_input_error_not_a_crash():
    # freesasa segfaults on an atom with no neighbour; such an atom is garbled input.
    chain = atoms_chain([[0, 0, 0], [1.5, 0, 0], [30, 0, 0]], [0, 0, 0], ["CA", "C", "O"], ["GLY"])
    with pytest.raises(InputError, match=r"mem: residue GLY 0 of chain A: atom O is 28\.5 Å from every other atom"):
        residue_sasa(chain)


def test_rsa_uses_tien_2013_maximum():
    np.testing.assert_allclose(relative_accessibility(np.array([104.0, 129.0, 0.0]), "GAW"), [1.0, 1.0, 0.0])
    assert MAX_ASA_TIEN2013["W"] == 285.0 and MAX_ASA_TIEN2013["R"] == 274.0
    assert 0 < relative_accessibility(np.array([100.0]), "X")[0] < 1


def test_half_sphere_exposure_counts_each_side():
    ca = np.array([[0, 0, 0], [0, 0, 5.0], [1, 0, 6.0], [0, 0, -5.0], [0, 0, 30.0]])
    cb = ca + np.array([0, 0, 1.0])  # every Cβ points along +z
    up, down = half_sphere_exposure(ca, cb, radius=13.0)
    assert (up[0], down[0]) == (2, 1)  # the residue at 30 Å is outside the sphere
    assert (up[3], down[3]) == (3, 0)
    np.testing.assert_array_equal(contact_number(cb, radius=5.5), [2, 2, 1, 1, 0])


def test_dihedrals_undefined_at_ends_and_breaks():
    rng = np.random.default_rng(0)
    # A chain of 4 residues with a break between residues 2 and 3 (C–N 20 Å apart).
    backbone = np.stack([np.array([[0, 0, 0], [1.46, 0, 0], [2.4, 1.0, 0], [3, 2, 0]]) + [3.8 * i, 0, 0]
                         for i in range(4)]) + rng.normal(0, 0.05, (4, 4, 3))
    backbone[3] += [20, 0, 0]
    phi, psi = backbone_dihedrals(backbone)
    assert np.isnan(phi[0]) and np.isnan(psi[3])
    assert np.isnan(psi[2]) and np.isnan(phi[3])  # either side of the break
    assert np.isfinite(phi[1:3]).all() and np.isfinite(psi[:2]).all()


def test_real_helix_residues_have_helical_angles_and_virtual_cb_fits():
    chain = real_chain()
    ss = secondary_structure(chain.backbone, chain.sequence)
    assert ss.shape == (len(chain.sequence), 3) and (ss.sum(1) == 1).all()
    phi, psi = backbone_dihedrals(chain.backbone)
    helix = ss[:, 0] == 1
    assert helix.sum() > 20
    # α-helix: φ ≈ -63°, ψ ≈ -43°; DSSP helices should sit near there.
    near = (np.abs(np.degrees(phi[helix]) + 63) < 35) & (np.abs(np.degrees(psi[helix]) + 43) < 35)
    assert near.mean() > 0.9
    has_cb = ~np.isnan(chain.cb).any(1)
    error = np.linalg.norm(virtual_cb(chain.backbone)[has_cb] - chain.cb[has_cb], axis=1)
    assert np.median(error) < 0.2


def test_real_descriptors_are_finite_and_plausible():
    chain = real_chain()
    x = structure_descriptors(chain)
    assert x.shape == (len(chain.sequence), len(STRUCTURE_COLUMNS)) and np.isfinite(x).all()
    rsa = x[:, STRUCTURE_COLUMNS.index("rsa")]
    assert 0 <= rsa.min() and rsa.max() < 1.6 and 0.1 < rsa.mean() < 0.7
    sin, cos = x[:, STRUCTURE_COLUMNS.index("phi_sin")], x[:, STRUCTURE_COLUMNS.index("phi_cos")]
    np.testing.assert_allclose((sin ** 2 + cos ** 2)[1:], 1.0, rtol=1e-9)
    assert sin[0] == cos[0] == 0  # the first φ is undefined
    # Buried residues (many Cα above the side chain) are less accessible than exposed ones.
    up = x[:, STRUCTURE_COLUMNS.index("hse_up")]
    assert rsa[up >= np.quantile(up, 0.75)].mean() < rsa[up <= np.quantile(up, 0.25)].mean()


def test_short_chain_is_coil():
    np.testing.assert_array_equal(secondary_structure(np.zeros((3, 4, 3)), "AAA"), [[0, 0, 1]] * 3)
