import numpy as np
import pandas as pd
import pytest

from siteaug.features import (
    BASE_FEATURES,
    BLOSUM62,
    NEIGHBOUR_FEATURES,
    SCALES,
    apply_standardisation,
    build_feature_tables,
    feature_columns,
    feature_names,
    protein_features,
    residue_graph,
    standardise,
)
from siteaug.io import AMINO_ACIDS, InputError

THREE = {"A": "ALA", "C": "CYS", "D": "ASP", "E": "GLU", "F": "PHE", "G": "GLY", "H": "HIS", "I": "ILE",
         "K": "LYS", "L": "LEU", "M": "MET", "N": "ASN", "P": "PRO", "Q": "GLN", "R": "ARG", "S": "SER",
         "T": "THR", "V": "VAL", "W": "TRP", "Y": "TYR"}


def line_trace(length, spacing=3.8):
    return np.column_stack([np.arange(length) * spacing, np.zeros(length), np.zeros(length)])


def write_pdb(path, sequence, ca, chain="A"):
    lines = [f"ATOM  {i + 1:>5}  CA  {THREE[a]} {chain}{i + 1:>4}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           C"
             for i, (a, (x, y, z)) in enumerate(zip(sequence, ca))]
    path.write_text("\n".join(lines) + "\nEND\n")
    return str(path)


def column(names, x, name):
    return x[:, names.index(name)]


def test_names_and_shapes():
    assert len(BASE_FEATURES) == 20 + 20 + 5 + 2 + 2
    assert BASE_FEATURES[:2] == ["aa_A", "aa_C"] and BASE_FEATURES[-2:] == ["ca_count_r8", "ca_count_r12"]
    assert NEIGHBOUR_FEATURES == [f"nbr_{n}" for n in BASE_FEATURES if n not in ("rel_position", "has_structure")]
    x, names, edges = protein_features(AMINO_ACIDS + "X", None)
    assert x.dtype == np.float32 and x.shape == (21, len(BASE_FEATURES) + len(NEIGHBOUR_FEATURES))
    assert names == BASE_FEATURES + NEIGHBOUR_FEATURES == feature_names()
    assert edges.dtype == np.int64 and edges.shape == (2, 40)
    assert "ca_count_r7.5" in feature_names((7.5, 12.0))


def test_one_hot_blosum_and_scales():
    x, names, _ = protein_features(AMINO_ACIDS + "X", None)
    one_hot = x[:, [names.index(f"aa_{a}") for a in AMINO_ACIDS]]
    np.testing.assert_array_equal(one_hot[:20], np.eye(20))
    assert not one_hot[20].any()
    blosum = x[:, [names.index(f"blosum_{a}") for a in AMINO_ACIDS]]
    w = AMINO_ACIDS.index("W")
    assert blosum[w, w] == 11 and blosum[w, AMINO_ACIDS.index("C")] == -2
    np.testing.assert_array_equal(blosum[20], BLOSUM62["X"])
    np.testing.assert_array_equal(blosum[:20], blosum[:20].T)  # BLOSUM62 is symmetric
    charge = column(names, x, "charge")
    assert charge[AMINO_ACIDS.index("K")] == 1 and charge[AMINO_ACIDS.index("D")] == -1
    for scale, values in SCALES.items():
        assert column(names, x, scale)[20] == pytest.approx(np.mean(list(values.values())), rel=1e-6)


def test_position_and_ca_counts_on_straight_line():
    x, names, _ = protein_features("A" * 10, line_trace(10))
    # 3.8 Å apart: 8 Å reaches 2 residues each side, 12 Å reaches 3 (11.4 Å).
    np.testing.assert_array_equal(column(names, x, "ca_count_r8"), [2, 3, 4, 4, 4, 4, 4, 4, 3, 2])
    np.testing.assert_array_equal(column(names, x, "ca_count_r12"), [3, 4, 5, 6, 6, 6, 6, 5, 4, 3])
    np.testing.assert_allclose(column(names, x, "rel_position"), np.arange(10) / 9)
    assert (column(names, x, "has_structure") == 1).all()
    seq_only, _, _ = protein_features("A", None)
    assert column(names, seq_only, "rel_position")[0] == 0 and column(names, seq_only, "ca_count_r8")[0] == 0
    assert column(names, seq_only, "has_structure")[0] == 0


def test_residue_graph():
    ca = np.random.default_rng(0).uniform(0, 30, size=(60, 3))
    edges = residue_graph(ca, 60, 10.0)
    assert edges.dtype == np.int64 and edges.shape[0] == 2
    assert (edges[0] != edges[1]).all()
    pairs = set(map(tuple, edges.T))
    assert pairs == {(d, s) for s, d in pairs}
    assert list(map(tuple, edges.T)) == sorted(pairs)
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    assert pairs == {(i, j) for i in range(60) for j in range(60) if i != j and dist[i, j] <= 10.0}
    np.testing.assert_array_equal(residue_graph(None, 4, 10.0), [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    np.testing.assert_array_equal(residue_graph(line_trace(4), 4, 4.0), residue_graph(None, 4, 10.0))
    assert residue_graph(None, 1, 10.0).shape == (2, 0)


def test_neighbour_mean():
    x, names, _ = protein_features("AKD", None)
    nbr_charge = column(names, x, "nbr_charge")
    np.testing.assert_allclose(nbr_charge, [1.0, -0.5, 1.0])
    np.testing.assert_allclose(column(names, x, "nbr_volume")[1], (88.6 + 111.1) / 2, rtol=1e-6)
    np.testing.assert_allclose(column(names, x, "nbr_aa_A"), [0, 0.5, 0])
    # Two residues 50 Å apart share no edge: neighbour features are 0.
    far, _, edges = protein_features("KD", line_trace(2, spacing=50.0))
    assert edges.shape == (2, 0)
    assert not far[:, [names.index(n) for n in NEIGHBOUR_FEATURES]].any()


def test_standardise_uses_train_rows_only():
    df = pd.DataFrame({"split": ["train", "train", "train", "test"], "f_a": [1.0, 2.0, 3.0, 100.0],
                       "f_const": [5.0, 5.0, 5.0, 9.0]})
    out, stats = standardise(df, ["f_a", "f_const"])
    assert stats["f_a"]["mean"] == pytest.approx(2.0) and stats["f_a"]["std"] == pytest.approx(np.std([1, 2, 3]))
    assert stats["f_const"] == {"mean": 5.0, "std": 1.0}
    assert out["f_a"].dtype == np.float32 and out["f_a"].iloc[1] == 0
    changed = df.assign(f_a=[1.0, 2.0, 3.0, -7.0])
    assert standardise(changed, ["f_a", "f_const"])[1] == stats
    pd.testing.assert_frame_equal(apply_standardisation(df, stats), out)
    with pytest.raises(InputError, match="no rows"):
        standardise(df[df.split == "test"], ["f_a"])


@pytest.fixture
def proteins(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for k, length in enumerate([30, 45, 12, 60, 25]):
        seq = "".join(rng.choice(list(AMINO_ACIDS), length))
        path = write_pdb(tmp_path / f"p{k}.pdb", seq, rng.normal(0, 8, (length, 3))) if k != 2 else ""
        rows.append(dict(protein_id=f"p{k}_A", sequence=seq, labels="".join(rng.choice(["0", "1"], length)),
                         split="test" if k == 4 else "train", structure_path=path, chain="A" if k else None))
    return pd.DataFrame(rows)


def test_build_feature_tables(proteins):
    residues, edges = build_feature_tables(proteins, (8.0, 12.0), 10.0)
    assert list(residues.columns[:5]) == ["protein_id", "position", "residue", "label", "split"]
    assert feature_columns(residues) == [f"f_{n}" for n in feature_names()]
    assert len(residues) == proteins.sequence.str.len().sum()
    assert residues.position.dtype == np.int32 and residues.label.dtype == np.int8
    assert all(residues[c].dtype == np.float32 for c in feature_columns(residues))
    assert list(edges.columns) == ["protein_id", "src", "dst"]
    assert edges.src.dtype == np.int32 and edges.dst.dtype == np.int32
    p0 = residues[residues.protein_id == "p0_A"]
    assert "".join(p0.residue) == proteins.sequence[0] and "".join(map(str, p0.label)) == proteins.labels[0]
    assert (residues.loc[residues.protein_id == "p2_A", "f_has_structure"] == 0).all()
    assert (residues.loc[residues.protein_id == "p3_A", "f_has_structure"] == 1).all()
    # The protein without structure gets the sequence-neighbour graph.
    p2 = edges[edges.protein_id == "p2_A"]
    np.testing.assert_array_equal([p2.src, p2.dst], residue_graph(None, 12, 10.0))


def test_threads_give_identical_tables(proteins):
    one = build_feature_tables(proteins, (8.0, 12.0), 10.0, threads=1)
    two = build_feature_tables(proteins, (8.0, 12.0), 10.0, threads=2, progress=True)
    pd.testing.assert_frame_equal(one[0], two[0])
    pd.testing.assert_frame_equal(one[1], two[1])


def test_sequence_mismatch(proteins):
    bad = proteins.copy()
    seq = bad.at[1, "sequence"]
    bad.at[1, "sequence"] = seq[:7] + ("A" if seq[7] != "A" else "C") + seq[8:]
    with pytest.raises(InputError, match=r"p1\.pdb: sequence differs from record p1_A at position 8"):
        build_feature_tables(bad, (8.0, 12.0), 10.0)
    with pytest.raises(InputError, match=r"p1\.pdb: sequence differs from record p1_A at position 8"):
        build_feature_tables(bad, (8.0, 12.0), 10.0, threads=2)
