from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siteaug.features.residues import (
    BASE_FEATURES,
    BLOSUM62,
    CONTEXT_FEATURES,
    EDGE_GEOMETRY_COLUMNS,
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
from siteaug.features.structure import CONTEXT_COLUMNS, STRUCTURE_COLUMNS
from siteaug.inputs.demo import backbone_atoms, ca_trace, pdb_text
from siteaug.inputs.pdb import read_chain_atoms
from siteaug.runtime.io import AMINO_ACIDS, InputError

THREE = {"A": "ALA", "C": "CYS", "D": "ASP", "E": "GLU", "F": "PHE", "G": "GLY", "H": "HIS", "I": "ILE",
         "K": "LYS", "L": "LEU", "M": "MET", "N": "ASN", "P": "PRO", "Q": "GLN", "R": "ARG", "S": "SER",
         "T": "THR", "V": "VAL", "W": "TRP", "Y": "TYR"}


def line_trace(length, spacing=3.8):
    return np.column_stack([np.arange(length) * spacing, np.zeros(length), np.zeros(length)])


def write_pdb(path, sequence, ca, chain="A"):
    """A backbone-only (N, CA, C, O) PDB file around the given Cα trace."""
    path.write_text(pdb_text(sequence, backbone_atoms(np.asarray(ca, dtype=float)), chain))
    return str(path)


@pytest.fixture
def chain_of(tmp_path):
    def make(sequence, ca):
        return read_chain_atoms(write_pdb(tmp_path / f"c{len(sequence)}_{abs(hash(sequence))}.pdb", sequence, ca))
    return make


def column(names, x, name):
    return x[:, names.index(name)]


def test_names_and_shapes():
    sequence_names = 20 + 20 + 5 + 1
    structure_names = 1 + 2 + len(STRUCTURE_COLUMNS)
    assert len(BASE_FEATURES) == sequence_names + structure_names
    assert BASE_FEATURES[:2] == ["aa_A", "aa_C"] and BASE_FEATURES[45:49] == ["rel_position", "has_structure",
                                                                              "ca_count_r8", "ca_count_r12"]
    assert NEIGHBOUR_FEATURES == [f"nbr_{n}" for n in BASE_FEATURES if n not in ("rel_position", "has_structure")]
    assert CONTEXT_FEATURES == [f"ctx_r{r}_{n}" for r in (8, 12) for n in CONTEXT_COLUMNS]
    x, names, edges = protein_features(AMINO_ACIDS + "X", None)
    assert x.dtype == np.float32 and x.shape == (21, len(BASE_FEATURES) + len(NEIGHBOUR_FEATURES) + len(CONTEXT_FEATURES))
    assert names == BASE_FEATURES + NEIGHBOUR_FEATURES + CONTEXT_FEATURES == feature_names()
    assert edges.dtype == np.int64 and edges.shape == (2, 40)
    assert "ca_count_r7.5" in feature_names((7.5, 12.0))
    sequence_only = feature_names(groups=["sequence"])
    assert len(sequence_only) == sequence_names + sequence_names - 1
    assert not any(n.startswith(("ctx_", "has_structure", "ca_count", "rsa", "nbr_rsa")) for n in sequence_only)
    assert feature_names(groups=["pssm"], widths={"pssm": 3}) == ["pssm_0", "pssm_1", "pssm_2", "nbr_pssm_0",
                                                                  "nbr_pssm_1", "nbr_pssm_2"]


def test_protein_without_structure_gets_zero_structure_features():
    x, names, _ = protein_features("ACDKLM", None)
    structure = [names.index(n) for n in names if n in STRUCTURE_COLUMNS or n.startswith(("ctx_", "ca_count"))]
    assert np.isfinite(x).all()
    assert not x[:, structure].any() and not column(names, x, "has_structure").any()


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


def test_position_and_ca_counts_on_straight_line(chain_of):
    x, names, _ = protein_features("A" * 10, chain_of("A" * 10, line_trace(10)))
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


def test_neighbour_mean(chain_of):
    x, names, _ = protein_features("AKD", None)
    nbr_charge = column(names, x, "nbr_charge")
    np.testing.assert_allclose(nbr_charge, [1.0, -0.5, 1.0])
    np.testing.assert_allclose(column(names, x, "nbr_volume")[1], (88.6 + 111.1) / 2, rtol=1e-6)
    np.testing.assert_allclose(column(names, x, "nbr_aa_A"), [0, 0.5, 0])
    # Two residues 50 Å apart share no edge: neighbour features are 0.
    far, _, edges = protein_features("KD", chain_of("KD", line_trace(2, spacing=50.0)))
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
        # a Cα walk with 3.8 Å steps: random points would be refused as impossible geometry
        path = write_pdb(tmp_path / f"p{k}.pdb", seq, ca_trace(length, rng)) if k != 2 else ""
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
    assert list(edges.columns) == ["protein_id", "src", "dst", *EDGE_GEOMETRY_COLUMNS]
    assert edges.src.dtype == np.int32 and edges.dst.dtype == np.int32
    p0 = residues[residues.protein_id == "p0_A"]
    assert "".join(p0.residue) == proteins.sequence[0] and "".join(map(str, p0.label)) == proteins.labels[0]
    assert (residues.loc[residues.protein_id == "p2_A", "f_has_structure"] == 0).all()
    assert (residues.loc[residues.protein_id == "p3_A", "f_has_structure"] == 1).all()
    # The protein without structure gets the sequence-neighbour graph.
    p2 = edges[edges.protein_id == "p2_A"]
    np.testing.assert_array_equal([p2.src, p2.dst], residue_graph(None, 12, 10.0))
    # Its edges have no known distance and no orientation; structure edges have both.
    assert p2["distance"].isna().all() and not p2[list(EDGE_GEOMETRY_COLUMNS[1:])].to_numpy().any()
    p3 = edges[edges.protein_id == "p3_A"]
    assert (p3["distance"] <= 10.0).all() and np.allclose(np.linalg.norm(p3[["dir_1", "dir_2", "dir_3"]], axis=1), 1, atol=1e-5)


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


def test_sequence_only_group_ignores_the_structure(chain_of):
    seq = "ACDKLMNPQR"
    chain = chain_of(seq, line_trace(10))
    x, names, edges = protein_features(seq, chain, groups=["sequence"])
    assert names == feature_names(groups=["sequence"]) and x.shape == (10, len(names))
    np.testing.assert_array_equal(edges, residue_graph(None, 10, 10.0))  # sequence neighbours, not the Cα graph
    full, full_names, _ = protein_features(seq, chain)
    np.testing.assert_array_equal(x[:, :46], full[:, :46])  # the sequence block is the same either way


def test_structure_context_is_mean_within_each_radius(chain_of):
    rng = np.random.default_rng(4)
    seq = "".join(rng.choice(list(AMINO_ACIDS), 40))
    from siteaug.inputs.demo import ca_trace
    ca = ca_trace(40, rng)
    x, names, _ = protein_features(seq, chain_of(seq, ca))
    assert np.isfinite(x).all() and (column(names, x, "has_structure") == 1).all()
    dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    rsa = column(names, x, "rsa").astype(np.float64)
    for r in (8, 12):
        within = (dist <= r) & ~np.eye(40, dtype=bool)
        expected = np.array([rsa[row].mean() if row.any() else 0.0 for row in within])
        np.testing.assert_allclose(column(names, x, f"ctx_r{r}_rsa"), expected, rtol=1e-4, atol=1e-6)
    ss = x[:, [names.index(n) for n in ("ss_helix", "ss_strand", "ss_coil")]]
    assert (ss.sum(1) == 1).all()


def test_precomputed_groups_and_distance_map_graph():
    seq = "ACDKL"
    pssm = np.arange(10, dtype=np.float64).reshape(5, 2)
    d = np.abs(np.subtract.outer(np.arange(5), np.arange(5))) * 6.0  # residues 6 Å apart on a line
    x, names, edges = protein_features(seq, None, groups=["pssm"], precomputed={"pssm": pssm}, distances=d,
                                       graph_radius=13.0)
    assert names == ["pssm_0", "pssm_1", "nbr_pssm_0", "nbr_pssm_1"]
    np.testing.assert_array_equal(x[:, :2], pssm)
    assert {tuple(e) for e in edges.T} == {(i, j) for i in range(5) for j in range(5) if 0 < abs(i - j) <= 2}
    np.testing.assert_allclose(column(names, x, "nbr_pssm_0")[0], (2 + 4) / 2)


@pytest.fixture
def ppi_like(tmp_path):
    """Three proteins with pssm (width 2) and emb (width 3) groups and distance maps; p2 has no map."""
    rng = np.random.default_rng(7)
    rows = []
    for k, length in enumerate([6, 9, 4]):
        pid = f"p{k}X"
        for group, width in (("pssm", 2), ("emb", 3)):
            (tmp_path / group).mkdir(exist_ok=True)
            np.save(tmp_path / group / f"{pid}.npy", rng.normal(size=(length, width)).astype(np.float32))
        if k != 2:
            (tmp_path / "dm").mkdir(exist_ok=True)
            np.save(tmp_path / "dm" / f"{pid}.npy", (np.abs(np.subtract.outer(range(length), range(length))) * 3.8).astype(np.float16))
        rows.append(dict(protein_id=pid, sequence="".join(rng.choice(list(AMINO_ACIDS), length)),
                         labels="".join(rng.choice(["0", "1"], length)), split="train", structure_path="", chain=""))
    folders = {"pssm": str(tmp_path / "pssm"), "emb": str(tmp_path / "emb")}
    return pd.DataFrame(rows), folders, str(tmp_path / "dm"), tmp_path


def test_build_tables_from_precomputed_groups(ppi_like, caplog):
    proteins, folders, dm, _ = ppi_like
    with caplog.at_level("INFO", logger="siteaug.features.residues"):
        residues, edges = build_feature_tables(proteins, groups=["sequence", "emb"], precomputed=folders,
                                               distance_maps=dm, threads=2)
    cols = feature_columns(residues)
    assert [c for c in cols if "emb" in c] == ["f_emb_0", "f_emb_1", "f_emb_2", "f_nbr_emb_0",
                                                          "f_nbr_emb_1", "f_nbr_emb_2"]
    assert not any(c.startswith("f_pssm") for c in cols)  # named under precomputed but not selected
    np.testing.assert_allclose(residues.loc[residues.protein_id == "p1X", "f_emb_0"],
                               np.load(Path(folders["emb"]) / "p1X.npy")[:, 0])
    # 3.8 Å apart, radius 10 Å: two neighbours each side from the map; p2X falls back to sequence neighbours.
    assert len(edges[edges.protein_id == "p0X"]) == 2 * (5 + 4)
    p2 = edges[edges.protein_id == "p2X"]
    np.testing.assert_array_equal([p2.src, p2.dst], residue_graph(None, 4, 10.0))
    assert "protein p2X: no structure or distance map, sequence-neighbour graph" in caplog.text


def test_bad_precomputed_file_errors_or_is_skipped(ppi_like, caplog):
    proteins, folders, dm, tmp_path = ppi_like
    np.save(tmp_path / "emb" / "p1X.npy", np.zeros((8, 3), dtype=np.float32))  # one row short
    with pytest.raises(InputError, match=r"emb/p1X\.npy: record p1X: shape \(8, 3\) does not match the sequence length 9"):
        build_feature_tables(proteins, groups=["sequence", "emb"], precomputed=folders, distance_maps=dm)
    with caplog.at_level("WARNING", logger="siteaug.features.residues"):
        residues, edges = build_feature_tables(proteins, groups=["sequence", "emb"], precomputed=folders,
                                               distance_maps=dm, invalid_protein="skip")
    assert sorted(residues.protein_id.unique()) == ["p0X", "p2X"] and "p1X" not in set(edges.protein_id)
    assert "skipping protein p1X" in caplog.text and "skipped 1 of 3 proteins" in caplog.text
    # The group's width is read from the first protein that has a file, so a missing first file can be skipped too.
    (tmp_path / "emb" / "p0X.npy").unlink()
    residues, _ = build_feature_tables(proteins, groups=["sequence", "emb"], precomputed=folders, distance_maps=dm,
                                       invalid_protein="skip")
    assert sorted(residues.protein_id.unique()) == ["p2X"]


def test_group_config_errors(ppi_like):
    proteins, folders, _, _ = ppi_like
    with pytest.raises(InputError, match=r"config features.groups: 'hmm' is neither built in"):
        build_feature_tables(proteins, groups=["sequence", "hmm"], precomputed=folders)
    with pytest.raises(InputError, match=r"config features.precomputed: 'structure' is a built-in group name"):
        build_feature_tables(proteins, groups=["sequence"], precomputed={"structure": "x"})
    with pytest.raises(InputError, match="config features.invalid_protein"):
        build_feature_tables(proteins, groups=["sequence"], invalid_protein="ignore")


def test_missing_backbone_atom_errors_or_is_skipped(proteins, caplog):
    path = proteins.at[1, "structure_path"]
    lines = [ln for ln in open(path).read().splitlines() if not (ln.startswith("ATOM") and ln[12:16] == " O  " and ln[22:26] == "   5")]
    open(path, "w").write("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"p1\.pdb: residue \w{3} 5 of chain A lacks backbone atom\(s\) O"):
        build_feature_tables(proteins, (8.0, 12.0), 10.0)
    residues, _ = build_feature_tables(proteins, (8.0, 12.0), 10.0, invalid_protein="skip")
    assert "p1_A" not in set(residues.protein_id) and residues.protein_id.nunique() == 4
    # Without the structure group the PDB is not read at all, so the same file is no problem.
    assert build_feature_tables(proteins, groups=["sequence"])[0].protein_id.nunique() == 5
