import numpy as np

from siteaug.inputs.demo import make_demo
from siteaug.inputs.pdb import read_ca_trace
from siteaug.runtime.io import read_label_fasta


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_differs(tmp_path):
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        make_demo(tmp_path / name, n_proteins=6, min_length=30, max_length=50, seed=seed)
    a, b, c = (files(tmp_path / n) for n in "abc")
    assert len(a) == 7 and a == b
    assert a["labels.fa"] != c["labels.fa"]


def test_labels_and_structures(tmp_path):
    make_demo(tmp_path, n_proteins=20, min_length=30, max_length=50, seed=0)
    records = read_label_fasta(tmp_path / "labels.fa")
    assert len(records) == 20 and all(30 <= len(r.sequence) <= 50 for r in records)
    labels = "".join(r.labels for r in records)
    assert 0.02 < labels.count("1") / len(labels) < 0.25
    for record in records:
        sequence, ca = read_ca_trace(tmp_path / "pdb" / f"{record.protein_id}.pdb", "A")
        assert sequence == record.sequence
        np.testing.assert_allclose(np.linalg.norm(np.diff(ca, axis=0), axis=1), 3.8, atol=0.01)
