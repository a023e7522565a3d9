import os
import stat

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import siteaug.runtime.io as sio
from siteaug.runtime.io import InputError, atomic_path, read_label_fasta, read_parquet, write_parquet, write_text


def fasta(tmp_path, text: str, name: str = "labels.fa"):
    path = tmp_path / name
    path.write_bytes(text.encode("ascii"))
    return path


def one_line_error(path, record_id, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        read_label_fasta(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and record_id in message
    return message


def test_good_file(tmp_path):
    records = read_label_fasta(fasta(tmp_path, ">p1 some description\nACDEX\n01001\n\n>p2_B\nWY\n11\n"))
    assert [(r.protein_id, r.sequence, r.labels) for r in records] == [("p1", "ACDEX", "01001"), ("p2_B", "WY", "11")]


def test_lowercase_is_upper_cased(tmp_path):
    assert read_label_fasta(fasta(tmp_path, ">p1\nacdE\n0101\n"))[0].sequence == "ACDE"


def test_windows_line_endings(tmp_path):
    records = read_label_fasta(fasta(tmp_path, ">p1\r\nACDE\r\n0101\r\n>p2\r\nAC\r\n11\r\n"))
    assert [(r.protein_id, r.sequence, r.labels) for r in records] == [("p1", "ACDE", "0101"), ("p2", "AC", "11")]


@pytest.mark.parametrize(
    "text, record_id, fragment",
    [
        (">p1\nACDE\n0101\n>p2\nACD\n01\n", "p2", "label line has 2"),
        (">p1\nACD\n012\n", "p1", "0/1"),
        (">p1\nACBD\n0101\n", "p1", "unknown residue"),
        (">p1\nAC\n01\n>p1\nAD\n10\n", "p1", "duplicate"),
        (">p1\nACD\n>p2\nAC\n01\n", "p1", "cut short"),
        (">p1\nAC\n01\n>p2\nACD\n", "p2", "cut short"),
        (">p1\nACDEF\nGHIK\n000000000\n", "p1", ""),  # sequence split over two lines
        (">p1\nACDE\n01\n01\n", "p1", ""),  # labels split over two lines
        (">a/b\nAC\n01\n", "a/b", "protein id"),
        (">a..b\nAC\n01\n", "a..b", "protein id"),
        (">../etc\nAC\n01\n", "../etc", "protein id"),
    ],
    ids=["length", "label", "letter", "duplicate", "cut-mid", "cut-end", "split-seq", "split-labels", "slash",
         "dotdot", "parent"],
)
def test_bad_records(tmp_path, text, record_id, fragment):
    assert fragment in one_line_error(fasta(tmp_path, text), record_id)


def test_map_to_x(tmp_path):
    path = fasta(tmp_path, ">p1\nACBZd\n01010\n")
    one_line_error(path, "p1")
    assert read_label_fasta(path, unknown_residue="map_to_x")[0].sequence == "ACXXD"


@pytest.mark.parametrize("sequence", ["AC1D", "AC*D"])
def test_map_to_x_still_rejects_non_letters(tmp_path, sequence):
    assert "unknown residue" in one_line_error(fasta(tmp_path, f">p1\n{sequence}\n0101\n"), "p1", unknown_residue="map_to_x")


@pytest.mark.parametrize("text", ["", "\n \r\n"])
def test_empty_file(tmp_path, text):
    path = fasta(tmp_path, text)
    with pytest.raises(InputError, match="empty") as err:
        read_label_fasta(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("crash")
    assert target.read_text() == "first"  # the old complete file is untouched
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]  # no temp file left


@pytest.mark.parametrize("compress_floats", [True, False])
def test_write_parquet_failure_leaves_nothing(tmp_path, monkeypatch, compress_floats):
    def broken_write(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(sio.pq, "write_table", broken_write)
    with pytest.raises(OSError):
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet", compress_floats=compress_floats)
    assert list(tmp_path.iterdir()) == []


def shard_like_frame() -> pd.DataFrame:
    """What generate writes (str id, int64 candidate id, float32 f_* columns), plus a float column with NaN."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.standard_normal((50, 3)).astype(np.float32), columns=["f_a", "f_b", "f_c"])
    frame.insert(0, "candidate_id", np.arange(50, dtype=np.int64))
    frame.insert(0, "protein_id", np.repeat(["p1", "p2"], 25).astype(str))
    frame["score"] = np.where(np.arange(50) % 7 == 0, np.nan, rng.random(50))
    return frame


@pytest.mark.parametrize("compress_floats", [True, False])
def test_write_parquet_round_trip(tmp_path, compress_floats):
    frame = shard_like_frame()
    write_parquet(frame, tmp_path / "t.parquet", compress_floats=compress_floats)
    back = read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert back["score"].isna().sum() == frame["score"].isna().sum()
    assert list(read_parquet(tmp_path / "t.parquet", columns=["protein_id", "f_b"]).columns) == ["protein_id", "f_b"]


def test_write_parquet_empty_frame_round_trip(tmp_path):
    frame = shard_like_frame().iloc[:0]
    write_parquet(frame, tmp_path / "t.parquet", compress_floats=False)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), frame.reset_index(drop=True))


def test_write_parquet_encodings(tmp_path):
    """Floats uncompressed only when asked, ids always LZ4; min/max statistics on the non-float columns only."""
    for compress_floats, float_codec in [(True, "LZ4"), (False, "UNCOMPRESSED")]:
        write_parquet(shard_like_frame(), tmp_path / "t.parquet", compress_floats=compress_floats)
        group = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        assert {n: c.compression for n, c in columns.items()} == {
            "protein_id": "LZ4", "candidate_id": "LZ4", "f_a": float_codec, "f_b": float_codec, "f_c": float_codec,
            "score": float_codec,
        }
        assert {n for n, c in columns.items() if c.is_stats_set} == {"protein_id", "candidate_id"}


def test_write_parquet_hands_the_writer_a_fresh_name_and_replaces_the_target(tmp_path, monkeypatch):
    """Arrow truncates an existing file on open, which on ext4 makes close() flush it: the name must be free."""
    real_write, seen = sio.pq.write_table, []

    def checking_write(table, where, **kwargs):
        seen.append(os.path.exists(where))
        real_write(table, where, **kwargs)

    monkeypatch.setattr(sio.pq, "write_table", checking_write)
    target = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"a": [1.0]}), target)
    write_parquet(pd.DataFrame({"a": [2.0]}), target)
    assert seen == [False, False]
    assert read_parquet(target)["a"].tolist() == [2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_write_parquet_is_byte_identical(tmp_path):
    frame = pd.DataFrame({"protein_id": ["p1", "p2"], "x": [0.5, 1.5]}, index=[7, 3])
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "a.parquet"), frame.reset_index(drop=True))


def test_outputs_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text("x", tmp_path / "out.txt")
        write_parquet(pd.DataFrame({"a": [1.0]}), tmp_path / "out.parquet")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "out.parquet").stat().st_mode) == 0o644


def test_a_saved_model_payload_keeps_its_state_dicts_whole_and_on_the_cpu(tmp_path):
    import torch

    from siteaug.runtime.io import load_torch, save_torch

    network = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    state = network.state_dict()
    save_torch({"config": {"hidden": [4]}, "state_dicts": [state], "extra": {"steps": torch.tensor(7), "shape": (2, 3)}},
               tmp_path / "m.pt")
    payload = load_torch(tmp_path / "m.pt")
    saved = payload["state_dicts"][0]
    # The state dict keeps its class and the module versions load_state_dict reads (BatchNorm's is in _metadata).
    assert type(saved) is type(state) and saved._metadata == state._metadata
    assert all(torch.equal(saved[k], state[k]) and saved[k].device.type == "cpu" for k in state)
    assert payload["config"] == {"hidden": [4]} and int(payload["extra"]["steps"]) == 7 and payload["extra"]["shape"] == (2, 3)
    torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).load_state_dict(saved)
    assert [path.name for path in tmp_path.iterdir()] == ["m.pt"]  # written atomically: no temporary file left
