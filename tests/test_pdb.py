from pathlib import Path

import numpy as np
import pytest

from siteaug.inputs.pdb import chain_from_id, read_ca_trace, read_chain_atoms
from siteaug.runtime.io import InputError, read_label_fasta

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "graphsite_dna"


def atom(name, resname, resseq, xyz, chain="A", altloc=" ", icode=" ", record="ATOM", serial=1):
    """One fixed-column PDB atom line."""
    element = name.lstrip("0123456789")[0]
    padded = name if len(name) == 4 else f" {name:<3}"
    x, y, z = xyz
    return (f"{record:<6}{serial:>5} {padded}{altloc}{resname:>3} {chain}{resseq:>4}{icode}   "
            f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {element:>2}")


def residue(resname, resseq, x, chain="A", icode=" ", hydrogens=False, record="ATOM"):
    lines = [atom("N", resname, resseq, (x - 1, 0, 0), chain, icode=icode, record=record)]
    if hydrogens:
        lines += [atom("H", resname, resseq, (x - 1, 1, 0), chain, icode=icode, record=record),
                  atom("HA", resname, resseq, (x, 1, 0), chain, icode=icode, record=record)]
    lines += [atom("CA", resname, resseq, (x, 0, 0), chain, icode=icode, record=record),
              atom("C", resname, resseq, (x + 1, 0, 0), chain, icode=icode, record=record)]
    return lines


def write(tmp_path, lines, name="x.pdb"):
    path = tmp_path / name
    path.write_text("\n".join(lines + ["END"]) + "\n")
    return path


def test_basic_sequence_and_coordinates(tmp_path):
    path = write(tmp_path, residue("ALA", 1, 1.0) + residue("GLY", 2, 4.8) + residue("TRP", 3, 8.6))
    seq, ca = read_ca_trace(path)
    assert seq == "AGW"
    assert ca.dtype == np.float64 and ca.shape == (3, 3)
    np.testing.assert_allclose(ca[:, 0], [1.0, 4.8, 8.6])


def test_altloc_keeps_blank_or_first_seen(tmp_path):
    lines = residue("ALA", 1, 1.0) + [
        atom("N", "SER", 2, (4, 0, 0)),
        atom("CA", "SER", 2, (5, 0, 0), altloc="B"),  # first altloc seen for this residue wins
        atom("CA", "SER", 2, (6, 0, 0), altloc="A"),
        atom("N", "THR", 3, (8, 0, 0), altloc="A"),
        atom("N", "VAL", 3, (8, 0, 0), altloc="B"),
        atom("CA", "VAL", 3, (9.5, 0, 0), altloc="B"),
        atom("CA", "THR", 3, (9, 0, 0), altloc="A"),
    ]
    seq, ca = read_ca_trace(write(tmp_path, lines))
    assert seq == "AST"
    np.testing.assert_allclose(ca[:, 0], [1.0, 5.0, 9.0])


def test_insertion_codes_are_distinct_residues(tmp_path):
    lines = residue("ALA", 52, 1.0) + residue("GLY", 52, 4.0, icode="A") + residue("LYS", 53, 7.0)
    seq, ca = read_ca_trace(write(tmp_path, lines))
    assert seq == "AGK" and len(ca) == 3


def test_hetatm_water_ligand_ignored_mse_kept_nonstandard_is_x(tmp_path):
    lines = (residue("ALA", 1, 1.0) + residue("MSE", 2, 4.0, record="HETATM") + residue("UNK", 3, 7.0)
             + residue("GLY", 4, 10.0) + [atom("O", "HOH", 101, (0, 5, 5), record="HETATM"),
                                          atom("ZN", "ZN", 102, (1, 5, 5), record="HETATM"),
                                          atom("CA", "CA", 103, (2, 5, 5), record="HETATM")])
    seq, ca = read_ca_trace(write(tmp_path, lines))
    assert seq == "AMXG"
    np.testing.assert_allclose(ca[:, 0], [1.0, 4.0, 7.0, 10.0])


def test_hydrogens_do_not_matter(tmp_path):
    plain = residue("ALA", 1, 1.0) + residue("GLY", 2, 4.8)
    with_h = residue("ALA", 1, 1.0, hydrogens=True) + residue("GLY", 2, 4.8, hydrogens=True)
    a = read_ca_trace(write(tmp_path, plain, "a.pdb"))
    b = read_ca_trace(write(tmp_path, with_h, "b.pdb"))
    assert a[0] == b[0] == "AG"
    np.testing.assert_array_equal(a[1], b[1])


def test_only_first_model(tmp_path):
    lines = (["MODEL        1"] + residue("ALA", 1, 1.0) + ["ENDMDL", "MODEL        2"]
             + residue("ALA", 1, 50.0) + residue("GLY", 2, 54.0) + ["ENDMDL"])
    seq, ca = read_ca_trace(write(tmp_path, lines))
    assert seq == "A" and ca[0, 0] == 1.0


def test_chain_selection(tmp_path):
    lines = residue("ALA", 1, 1.0) + residue("GLY", 2, 4.0) + ["TER"] + residue("LYS", 1, 9.0, chain="B")
    path = write(tmp_path, lines)
    assert read_ca_trace(path)[0] == "AG"
    assert read_ca_trace(path, "A")[0] == "AG"
    assert read_ca_trace(path, "B")[0] == "K"
    with pytest.raises(InputError, match=r"x\.pdb: chain 'C' not found; chains present: 'A', 'B'"):
        read_ca_trace(path, "C")


def test_single_chain_fallback(tmp_path):
    # AlphaFold models call their only chain 'A' whatever the id says.
    path = write(tmp_path, residue("ALA", 1, 1.0) + residue("GLY", 2, 4.0))
    assert read_ca_trace(path, "B")[0] == "AG"


def test_missing_ca(tmp_path):
    lines = residue("ALA", 1, 1.0) + [atom("N", "GLY", 2, (4, 0, 0)), atom("C", "GLY", 2, (5, 0, 0))]
    with pytest.raises(InputError, match=r"x\.pdb: residue GLY 2 of chain A has no CA atom"):
        read_ca_trace(write(tmp_path, lines))


def test_missing_ca_in_other_chain_is_ignored(tmp_path):
    lines = residue("ALA", 1, 1.0) + [atom("N", "GLY", 1, (4, 0, 0), chain="B")]
    assert read_ca_trace(write(tmp_path, lines), "A")[0] == "A"


def test_truncated_coordinate_line(tmp_path):
    lines = residue("ALA", 1, 1.0) + residue("GLY", 2, 4.0)
    lines[4] = lines[4][:50]
    with pytest.raises(InputError, match=r"x\.pdb: line 5: truncated"):
        read_ca_trace(write(tmp_path, lines))


def test_garbled_ca_coordinates(tmp_path):
    lines = residue("ALA", 1, 1.0)
    lines[1] = lines[1][:30] + "   1x.00" + lines[1][38:]
    with pytest.raises(InputError, match=r"x\.pdb: line 2: unparsable CA coordinates"):
        read_ca_trace(write(tmp_path, lines))


def test_missing_file_and_no_atoms(tmp_path):
    with pytest.raises(InputError, match="nope.pdb: cannot open"):
        read_ca_trace(tmp_path / "nope.pdb")
    with pytest.raises(InputError, match="no ATOM records"):
        read_ca_trace(write(tmp_path, [atom("O", "HOH", 1, (0, 0, 0), record="HETATM")]))


def test_chain_from_id():
    assert chain_from_id("1abc_A") == "A"
    assert chain_from_id("5fmf_1") == "1"
    assert chain_from_id("1f60B") is None
    assert chain_from_id("_A") is None


@pytest.mark.realdata
def test_real_pdbs_match_fasta():
    if not (DATASET / "pdb").is_dir() or not (DATASET / "DNA_Train_573.fa").is_file():
        pytest.skip(f"real dataset not present at {DATASET}")
    records = {r.protein_id: r.sequence for r in read_label_fasta(DATASET / "DNA_Train_573.fa")}
    pdbs = sorted((DATASET / "pdb").glob("*.pdb"))[:5]
    assert len(pdbs) == 5
    for path in pdbs:
        seq, ca = read_ca_trace(path, chain_from_id(path.stem))
        assert seq == records[path.stem]
        assert ca.shape == (len(seq), 3) and np.isfinite(ca).all()


def full_residue(resname, resseq, x, chain="A", cb=True, hydrogens=False, icode=" "):
    lines = residue(resname, resseq, x, chain, icode=icode, hydrogens=hydrogens)
    lines.append(atom("O", resname, resseq, (x + 1, 1.2, 0), chain, icode=icode))
    if cb:
        lines.append(atom("CB", resname, resseq, (x, -1, 1), chain, icode=icode))
    return lines


def test_chain_atoms_backbone_cb_and_heavy_atoms(tmp_path):
    lines = full_residue("ALA", 1, 1.0, hydrogens=True) + full_residue("GLY", 2, 4.8, cb=False)
    lines += [atom("O", "HOH", 101, (9, 9, 9), record="HETATM")]
    chain = read_chain_atoms(write(tmp_path, lines))
    assert chain.sequence == "AG" and chain.chain == "A" and chain.residue_labels == ("ALA 1", "GLY 2")
    assert chain.backbone.shape == (2, 4, 3)
    np.testing.assert_allclose(chain.backbone[0, :, 0], [0.0, 1.0, 2.0, 2.0])  # N, CA, C, O x-coordinates
    np.testing.assert_allclose(chain.cb[0], [1, -1, 1])
    assert np.isnan(chain.cb[1]).all()  # glycine: no CB in the file
    assert chain.atom_names == ("N", "CA", "C", "O", "CB", "N", "CA", "C", "O")  # hydrogens and water dropped
    np.testing.assert_array_equal(chain.atom_residue, [0, 0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(chain.ca, read_ca_trace(write(tmp_path, lines, "b.pdb"))[1])


def test_chain_atoms_altloc_insertion_code_and_chain(tmp_path):
    lines = full_residue("ALA", 1, 1.0) + full_residue("SER", 1, 4.0, icode="A")
    lines.insert(2, atom("CA", "ALA", 1, (50, 0, 0), altloc="B"))  # a second CA, other altloc: dropped
    lines[1] = lines[1][:16] + "A" + lines[1][17:]
    lines += ["TER"] + full_residue("LYS", 1, 9.0, chain="B")
    path = write(tmp_path, lines)
    chain = read_chain_atoms(path, "A")
    assert chain.sequence == "AS" and chain.residue_labels == ("ALA 1", "SER 1A")
    assert chain.ca[0, 0] == 1.0
    assert read_chain_atoms(path, "B").sequence == "K"
    with pytest.raises(InputError, match=r"x\.pdb: chain 'Z' not found"):
        read_chain_atoms(path, "Z")


def test_chain_atoms_missing_backbone_atom_names_residue(tmp_path):
    lines = full_residue("ALA", 1, 1.0) + [line for line in full_residue("GLY", 2, 4.8) if line[12:16].strip() != "O"]
    with pytest.raises(InputError, match=r"x\.pdb: residue GLY 2 of chain A lacks backbone atom\(s\) O$"):
        read_chain_atoms(write(tmp_path, lines))
    # read_ca_trace only needs CA, so the same file passes there.
    assert read_ca_trace(tmp_path / "x.pdb")[0] == "AG"


def test_chain_atoms_truncated_file(tmp_path):
    lines = full_residue("ALA", 1, 1.0) + full_residue("GLY", 2, 4.8)
    lines[6] = lines[6][:41]
    with pytest.raises(InputError, match=r"x\.pdb: line 7: truncated"):
        read_chain_atoms(write(tmp_path, lines))
