from collections import Counter

import pytest

from siteaug.inputs.demo import make_demo
from siteaug.inputs.prepare import prepare_proteins, split_proteins
from siteaug.runtime.io import InputError, read_label_fasta

IDS = [f"q{i:03d}" for i in range(100)]


@pytest.fixture
def demo(tmp_path):
    make_demo(tmp_path, n_proteins=20, min_length=30, max_length=50, seed=0)
    return tmp_path


def write_records(path, records):
    path.write_text("".join(f">{r.protein_id}\n{r.sequence}\n{r.labels}\n" for r in records))
    return str(path)


def test_split_fractions_and_determinism():
    split = split_proteins(IDS, validation=0.1, test=0.2, seed=1)
    assert Counter(split) == {"train": 70, "validation": 10, "test": 20}
    assert split_proteins(IDS, 0.1, 0.2, seed=1) == split
    assert split_proteins(IDS, 0.1, 0.2, seed=2) != split


def test_split_too_few_proteins():
    with pytest.raises(InputError):
        split_proteins(["a", "b"], validation=0.2, test=0.2, seed=0)


def test_prepare_demo(demo):
    table = prepare_proteins(str(demo / "labels.fa"), str(demo / "pdb"), 0.2, 0.2, seed=0)
    assert list(table.columns) == ["protein_id", "sequence", "labels", "split", "structure_path", "chain",
                                   "n_residues", "n_positives", "source", "similar_to"]
    assert table["protein_id"].is_unique and len(table) == 20  # one split per protein
    assert Counter(table["split"]) == {"train": 12, "validation": 4, "test": 4}
    assert (table["chain"] == "A").all() and table["structure_path"].str.endswith(".pdb").all()
    assert (table["n_residues"] == table["sequence"].str.len()).all()


def test_missing_structure(demo):
    missing = demo / "pdb" / "demo0003_A.pdb"
    missing.unlink()
    with pytest.raises(InputError, match="demo0003_A") as err:
        prepare_proteins(str(demo / "labels.fa"), str(demo / "pdb"), 0.2, 0.2, seed=0)
    assert str(demo / "labels.fa") in str(err.value)
    table = prepare_proteins(str(demo / "labels.fa"), str(demo / "pdb"), 0.2, 0.2, seed=0,
                             missing_structure="sequence_graph")
    paths = table.set_index("protein_id")["structure_path"]
    assert paths["demo0003_A"] == "" and (paths.drop("demo0003_A") != "").all()


def test_pdb_sequence_mismatch(demo):
    records = read_label_fasta(demo / "labels.fa")
    first = records[0]
    changed = first.sequence[:4] + ("W" if first.sequence[4] != "W" else "A") + first.sequence[5:]
    records[0] = type(first)(first.protein_id, changed, first.labels)
    labels = write_records(demo / "edited.fa", records)
    with pytest.raises(InputError, match="position 5") as err:
        prepare_proteins(labels, str(demo / "pdb"), 0.2, 0.2, seed=0)
    assert str(demo / "pdb" / f"{first.protein_id}.pdb") in str(err.value) and first.protein_id in str(err.value)


def test_external_test_set(demo):
    records = read_label_fasta(demo / "labels.fa")
    train = write_records(demo / "train.fa", records[:14])
    external = write_records(demo / "external.fa", records[14:])
    table = prepare_proteins(train, str(demo / "pdb"), 0.2, 0.3, seed=0, external_test_labels=external,
                             external_test_structures=str(demo / "pdb"))
    internal = table[table["source"] == "labels"]
    assert set(table.loc[table["source"] == "external_test", "split"]) == {"test"}
    assert sorted(table.loc[table["split"] == "test", "protein_id"]) == [r.protein_id for r in records[14:]]
    assert set(internal["split"]) == {"train", "validation"} and len(internal) == 14


def test_external_overlap_rejected(demo):
    records = read_label_fasta(demo / "labels.fa")
    train = write_records(demo / "train.fa", records[:14])
    external = write_records(demo / "external.fa", records[13:])
    with pytest.raises(InputError, match=records[13].protein_id) as err:
        prepare_proteins(train, str(demo / "pdb"), 0.2, 0.2, seed=0, external_test_labels=external,
                         external_test_structures=str(demo / "pdb"))
    assert external in str(err.value)
