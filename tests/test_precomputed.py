from pathlib import Path

import numpy as np
import pytest

from siteaug.features.precomputed import group_width, load_distance_map, load_feature_group, unknown_distance_pairs
from siteaug.runtime.io import InputError, read_label_fasta

PPI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "graphppis_ppi"


def save(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f"{name}.npy", array)
    return folder


def test_valid_group_loads_as_float64(tmp_path):
    folder = save(tmp_path / "pssm", "p1", np.arange(12, dtype=np.float32).reshape(4, 3))
    assert group_width(folder, "pssm", "p1") == 3
    x = load_feature_group(folder, "pssm", "p1", 4, 3)
    assert x.dtype == np.float64 and x[3, 2] == 11
    save(folder, "p2", np.ones((2, 3), dtype=np.int16))  # integers are numbers too
    assert load_feature_group(folder, "pssm", "p2", 2, 3).sum() == 6


@pytest.mark.parametrize("array, message", [
    (np.zeros((5, 3)), r"p1\.npy: record p1: shape \(5, 3\) does not match the sequence length 4"),
    (np.zeros((4, 2)), r"shape \(4, 2\) does not match the sequence length 4 and the group's width 3"),
    (np.zeros(4), r"p1\.npy: record p1: feature group 'pssm' must be 2-D \(L, W\), got shape \(4,\)"),
    (np.array([["a"] * 3] * 4), r"p1\.npy: record p1: dtype <U1 is not a number type"),
    (np.zeros((4, 3), dtype=bool), r"dtype bool is not a number type"),
])
def test_bad_group_file(tmp_path, array, message):
    folder = save(tmp_path / "pssm", "p1", array)
    with pytest.raises(InputError, match=message):
        load_feature_group(folder, "pssm", "p1", 4, 3)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_value_names_residue_and_column(tmp_path, value):
    array = np.zeros((4, 3))
    array[2, 1] = value
    folder = save(tmp_path / "hmm", "p1", array)
    with pytest.raises(InputError, match=rf"p1\.npy: record p1: non-finite value {value} at residue 3, column 2$"):
        load_feature_group(folder, "hmm", "p1", 4, 3)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputError, match=r"p1\.npy: record p1: feature group 'pssm' file not found"):
        load_feature_group(tmp_path, "pssm", "p1", 4, 3)
    (tmp_path / "p2.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match=r"p2\.npy: record p2: unreadable \.npy file"):
        load_feature_group(tmp_path, "pssm", "p2", 4, 3)
    np.save(tmp_path / "p3.npy", np.array([{"a": 1}], dtype=object))  # pickled objects are never loaded
    with pytest.raises(InputError, match=r"p3\.npy: record p3: unreadable"):
        load_feature_group(tmp_path, "pssm", "p3", 1, 1)


def test_distance_map(tmp_path):
    d = np.array([[0, 3.8, -1], [3.8, 0, -1], [-1, -1, 0]], dtype=np.float16)
    folder = save(tmp_path / "dm", "p1", d)
    loaded = load_distance_map(folder, "p1", 3)
    assert loaded.dtype == np.float64 and loaded[0, 1] == pytest.approx(3.8, abs=1e-2)
    assert np.isinf(loaded[0, 2]) and unknown_distance_pairs(loaded) == 2  # -1 marks an unknown distance
    assert load_distance_map(folder, "absent", 3) is None
    with pytest.raises(InputError, match=r"p1\.npy: record p1: distance map has shape \(3, 3\), expected \(4, 4\)"):
        load_distance_map(folder, "p1", 4)
    d = d.astype(np.float32)
    d[1, 0] = np.nan
    save(folder, "p2", d)
    with pytest.raises(InputError, match=r"p2\.npy: record p2: non-finite value nan at residue 2, column 1"):
        load_distance_map(folder, "p2", 3)


@pytest.mark.realdata
def test_real_ppi_files_match_their_records():
    if not (PPI / "Train_335.fa").is_file():
        pytest.skip(f"PPI-335 data not found at {PPI}")
    records = read_label_fasta(PPI / "Train_335.fa")[:20]
    assert records[0].protein_id == "1f60B"  # ids carry the chain without an underscore
    for r in records:
        for group, width in (("pssm", 20), ("hmm", 20), ("dssp", 14)):
            x = load_feature_group(PPI / "features" / group, group, r.protein_id, len(r.sequence), width)
            assert x.shape == (len(r.sequence), width)
        d = load_distance_map(PPI / "features" / "distance_map", r.protein_id, len(r.sequence))
        assert d is not None and (np.diag(d) == 0).all()
    assert load_distance_map(PPI / "features" / "distance_map", "2yajA", 10) is None  # the one without a map
