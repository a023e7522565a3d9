"""Hostile inputs, round 2 (issue 16): leaks across splits, degenerate structures, config values that would crash late,
misleading arms and unclear errors. Same contract as ``test_bad_inputs.py``: one line naming the file and record (or
config key), non-zero exit, no traceback, no partial output.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_yaml
from siteaug.inputs.demo import make_demo
from siteaug.inputs.identity import alignment_identity, identity_groups, similar_pairs
from siteaug.inputs.prepare import prepare_proteins, split_proteins
from siteaug.runtime.io import InputError, read_label_fasta

TINY = tiny_yaml()
SPLIT = dict(validation_fraction=TINY["split"]["validation"], test_fraction=TINY["split"]["test"], seed=TINY["seed"])


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability_demo")
    make_demo(root, n_proteins=12, min_length=30, max_length=40, seed=0)
    return root


@pytest.fixture
def inputs(demo_template, tmp_path) -> Path:
    shutil.copytree(demo_template, tmp_path / "inputs")
    return tmp_path / "inputs"


def records_text(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [lines[k : k + 3] for k in range(0, len(lines), 3)]


def write_records(path: Path, records) -> None:
    path.write_text("".join(f"{a}\n{b}\n{c}\n" for a, b, c in records))


def prepare(root: Path, **kwargs):
    return prepare_proteins(str(root / "labels.fa"), str(root / "pdb"), **SPLIT, **kwargs)


# ---- leaks: identical and near-identical sequences ----------------------------------------------------------------


def test_alignment_identity():
    assert alignment_identity("ACDEFGHIK", "ACDEFGHIK") == 1.0
    assert alignment_identity("ACDEFGHIK", "ACDEFGHIW") == pytest.approx(8 / 9)
    assert alignment_identity("ACDEFGHIK", "ACDFGHIKW") == pytest.approx(7 / 9)  # one gap costs its position
    assert alignment_identity("CDEFG", "AAAAACDEFGAAAA") == 1.0  # a fragment is its protein (shorter-length identity)
    rng = np.random.default_rng(0)
    letters = list("ACDEFGHIKLMNPQRSTVWY")
    unrelated = [alignment_identity("".join(rng.choice(letters, 60)), "".join(rng.choice(letters, 400))) for _ in range(20)]
    assert max(unrelated) < 0.3



def own_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines, less Snakemake's note that it loaded the workflow's default profile."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("Using workflow specific profile")]

@pytest.mark.parametrize("block", [512, 5], ids=["one-block", "blocks-of-5"])
def test_candidate_search_misses_no_pair(block, monkeypatch):
    """The k-mer prefilter against aligning every pair: same pairs at several thresholds."""
    import siteaug.inputs.identity

    monkeypatch.setattr(siteaug.inputs.identity, "_BLOCK", block)
    rng = np.random.default_rng(1)
    letters = list("ACDEFGHIKLMNPQRSTVWY")
    sequences = ["".join(rng.choice(letters, rng.integers(30, 120))) for _ in range(12)]
    for k in range(6):  # mutated copies with 1-15 % of positions changed, one with a deletion
        s = list(sequences[k])
        for pos in rng.choice(len(s), size=max(1, int(len(s) * 0.03 * (k + 1) / 2)), replace=False):
            s[pos] = letters[(letters.index(s[pos]) + 1) % 20]
        if k == 2:
            del s[5:8]
        sequences.append("".join(s))
    for threshold in (0.8, 0.9, 0.95):
        brute = {(i, j) for i in range(len(sequences)) for j in range(i + 1, len(sequences))
                 if alignment_identity(sequences[i], sequences[j]) >= threshold}
        assert {(i, j) for i, j, _ in similar_pairs(sequences, None, threshold)} == brute
        assert brute, threshold


def test_groups_that_cannot_fill_the_split_name_the_key():
    with pytest.raises(InputError, match="identity groups cannot fill .* split.identity_threshold"):
        split_proteins([f"p{k}" for k in range(10)], 0.2, 0.2, 0, groups=[0] * 9 + [1])


def test_split_without_duplicates_is_unchanged():
    ids = [f"p{k}" for k in range(40)]
    order = np.random.default_rng(7).permutation(40)
    expected = np.empty(40, dtype=object)
    expected[order[:6]], expected[order[6:12]], expected[order[12:]] = "test", "validation", "train"
    assert split_proteins(ids, 0.15, 0.15, 7) == expected.tolist()
    assert split_proteins(ids, 0.15, 0.15, 7, groups=list(range(40))) == expected.tolist()


def test_identical_sequence_under_another_id_stays_in_one_split(inputs, caplog):
    """The same protein under an id differing only in letter case lands in one split, for every seed."""
    records = records_text(inputs / "labels.fa")
    first = records[0]
    copy = [">DEMO0000_A", first[1].lower(), first[2]]
    write_records(inputs / "labels.fa", records + [copy])
    shutil.copy(inputs / "pdb" / "demo0000_A.pdb", inputs / "pdb" / "DEMO0000_A.pdb")
    for seed in range(8):
        with caplog.at_level(logging.INFO, logger="siteaug.inputs.identity"):
            table = prepare_proteins(str(inputs / "labels.fa"), str(inputs / "pdb"), 0.2, 0.2, seed).set_index("protein_id")
        assert table.loc["demo0000_A", "split"] == table.loc["DEMO0000_A", "split"], seed
    assert "proteins demo0000_A and DEMO0000_A share a split group (identical sequences)" in caplog.text


def test_near_identical_sequences_stay_in_one_split(inputs, caplog):
    records = records_text(inputs / "labels.fa")
    sequence = records[3][1]
    mutant = sequence[:10] + ("A" if sequence[10] != "A" else "G") + sequence[11:]
    write_records(inputs / "labels.fa", records + [[">mutant_A", mutant, records[3][2]]])
    pdb = (inputs / "pdb" / f"{records[3][0][1:]}.pdb").read_text()
    from siteaug.inputs.demo import THREE_LETTER
    old, new = THREE_LETTER[sequence[10]], THREE_LETTER[mutant[10]]
    lines = [line[:17] + new + line[20:] if line.startswith("ATOM") and line[22:26].strip() == "11" else line
             for line in pdb.splitlines()]
    assert old != new
    (inputs / "pdb" / "mutant_A.pdb").write_text("\n".join(lines) + "\n")
    for seed in range(8):
        with caplog.at_level(logging.INFO, logger="siteaug.inputs.identity"):
            table = prepare_proteins(str(inputs / "labels.fa"), str(inputs / "pdb"), 0.2, 0.2, seed).set_index("protein_id")
        assert table.loc[records[3][0][1:], "split"] == table.loc["mutant_A", "split"], seed
    assert f"proteins {records[3][0][1:]} and mutant_A share a split group (sequence identity 0.9" in caplog.text
    groups = identity_groups(["a", "b"], [sequence, mutant], None)  # null threshold: identical sequences only
    assert groups == [0, 1]


def external_copy(inputs: Path) -> Path:
    """An external test set: two new demo proteins plus an internal one (the training set's first) under a new id."""
    made = inputs.parent / "made"
    make_demo(made, n_proteins=2, min_length=30, max_length=40, seed=99)
    ext = inputs.parent / "external"
    (ext / "pdb").mkdir(parents=True)
    records = []
    for k, (header, sequence, labels) in enumerate(records_text(made / "labels.fa")):
        records.append([f">ext{k}_A", sequence, labels])
        shutil.copy(made / "pdb" / f"{header[1:]}.pdb", ext / "pdb" / f"ext{k}_A.pdb")
    internal = records_text(inputs / "labels.fa")[0]
    write_records(ext / "labels.fa", records + [[">renamed_A", internal[1], internal[2]]])
    shutil.copy(inputs / "pdb" / "demo0000_A.pdb", ext / "pdb" / "renamed_A.pdb")
    return ext


def test_external_test_set_sharing_a_training_sequence_is_refused(inputs):
    ext = external_copy(inputs)
    with pytest.raises(InputError) as err:
        prepare(inputs, external_test_labels=str(ext / "labels.fa"), external_test_structures=str(ext / "pdb"))
    message = str(err.value)
    assert "\n" not in message and str(ext / "labels.fa") in message
    assert "record renamed_A has the same sequence as record demo0000_A" in message
    assert "input.external_test_overlap" in message


def test_external_test_overlap_allowed_is_recorded(inputs, caplog):
    ext = external_copy(inputs)
    with caplog.at_level(logging.WARNING, logger="siteaug.inputs.prepare"):
        table = prepare(inputs, external_test_labels=str(ext / "labels.fa"), external_test_structures=str(ext / "pdb"),
                        external_test_overlap="allow")
    row = table.set_index("protein_id").loc["renamed_A"]
    assert row["split"] == "test" and row["similar_to"] == "demo0000_A"
    assert (table.loc[table["protein_id"] != "renamed_A", "similar_to"] == "").all()
    assert "external test protein renamed_A has the same sequence as demo0000_A" in caplog.text


# ---- degenerate structures ----------------------------------------------------------------------------------------


def transform_atoms(path: Path, transform) -> None:
    """Rewrite the coordinates of every ATOM line: ``transform(k, name, xyz) -> xyz`` (k: residue index from 0)."""
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("ATOM"):
            xyz = np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])
            xyz = transform(int(line[22:26]) - 1, line[12:16].strip(), xyz)
            line = line[:30] + "".join(f"{v:8.3f}" for v in xyz) + line[54:]
        out.append(line)
    path.write_text("\n".join(out) + "\n")


def overlap_ca(k, name, xyz, _ref={}):  # noqa: B006  (deliberately shared: remembers residue 1's CA across the calls for one file)
    if name == "CA" and k == 1:
        _ref["ca"] = xyz
    return _ref["ca"] + 0.3 if name == "CA" and k == 6 else xyz


STRUCTURE_CASES = [
    ("all-zero", lambda k, name, xyz: xyz * 0, "all 3"),
    ("all-equal", lambda k, name, xyz: np.array([1.5, -2.0, 7.25]), "are at one point"),
    ("collapsed", lambda k, name, xyz: xyz * 0.3, "median Cα-Cα distance of sequence neighbours is 1.1"),
    ("nanometres", lambda k, name, xyz: xyz / 10, "collapsed or rescaled"),
    ("overlapping-ca", overlap_ca, "Cα atoms of residues 2 and 7 are"),
]


@pytest.mark.parametrize("name, transform, fragment", STRUCTURE_CASES, ids=[c[0] for c in STRUCTURE_CASES])
def test_degenerate_structure_is_refused_or_skipped(inputs, name, transform, fragment, caplog):
    from siteaug.features.residues import build_feature_tables

    pdb = inputs / "pdb" / "demo0002_A.pdb"
    transform_atoms(pdb, transform)
    table = prepare(inputs)
    with pytest.raises(InputError) as err:
        build_feature_tables(table)
    message = str(err.value)
    assert "\n" not in message and f"{pdb}: record demo0002_A" in message and fragment in message, message
    with caplog.at_level(logging.WARNING, logger="siteaug.features.residues"):
        residues, edges = build_feature_tables(table, invalid_protein="skip")
    assert "demo0002_A" not in set(residues["protein_id"]) and "demo0002_A" not in set(edges["protein_id"])
    assert "skipped 1 of 12 proteins" in caplog.text


def test_degenerate_distance_map_is_refused(inputs, tmp_path):
    from siteaug.features.residues import build_feature_tables

    table = prepare(inputs)
    folder = tmp_path / "maps"
    folder.mkdir()
    pid, length = table["protein_id"].iloc[0], int(table["n_residues"].iloc[0])
    np.save(folder / f"{pid}.npy", np.zeros((length, length), np.float32))
    with pytest.raises(InputError) as err:
        build_feature_tables(table, groups=("sequence",), distance_maps=str(folder))
    assert f"{folder / pid}.npy: record {pid}: all {length} Cα atoms are at one point" in str(err.value)


# ---- config values that pass the schema but would crash late ------------------------------------------------------

from helpers import REPO, config_with, copy_config, run_snakemake, write_config  # noqa: E402
from siteaug.runtime.config_checks import check_config, check_config_against_data, check_config_files  # noqa: E402
from siteaug.runtime.io import StorageError, read_parquet, write_parquet  # noqa: E402


def full_config(overrides=None) -> dict:
    """tiny.yaml with overrides, every default of the schema filled in (as Snakemake's validate does)."""
    from snakemake.utils import validate

    config = config_with(overrides)
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def sweep_names(config):
    from siteaug.arms.protocol import sweep_arm

    return [sweep_arm(r) for r in config["classifier"]["ratio_sweep"]]


CONFIG_CASES = [
    ("seed-plus-seeds", {"seed": 2**31 - 1}, "config seed: 2147483647 is too large"),
    ("demo-lengths", {"demo.min_length": 80, "demo.max_length": 50}, "config demo.min_length: 80 is above demo.max_length 50"),
    ("sweep-collision", {"classifier.ratio_sweep": [0.4, 0.40000001]}, "would both be arm diffusion_ratio0.4"),
    ("sweep-above-target", {"classifier.ratio_sweep": [0.6]}, "config classifier.ratio_sweep: 0.6 is above"),
    ("radii-same-name", {"features.neighbour_radii": [8.0, 8.0000001]}, "config features.neighbour_radii: [8.0, 8.0000001]"),
    ("files-without-labels", {"input.source": "files"}, "config input.labels: required when input.source is files"),
]


@pytest.mark.parametrize("name, overrides, fragment", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_check_names_the_key(name, overrides, fragment):
    config = full_config(overrides)
    with pytest.raises(InputError) as err:
        check_config(config, sweep_names(config))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_schema_caps_the_seed():
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError, match="seed"):
        full_config({"seed": 2**31})


def test_tiny_config_passes_the_checks():
    config = full_config()
    check_config(config, sweep_names(config))


def test_duplicate_yaml_key_is_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("seed: 1\nfilter:\n  knn_k: 3\n  quality_threshold: 0.2\n  knn_k: 7\n")
    with pytest.raises(InputError) as err:
        check_config_files([path])
    assert str(err.value) == f"{path}: line 5: key 'knn_k' given twice (first at line 3); YAML would keep only the last value"
    path.write_text("\ufeffseed: 1\nfilter: {knn_k: 3}\n")  # a byte-order mark alone is fine
    check_config_files([path])


def data_proteins(train_positives, validation_positives=40, train_residues=400):
    import pandas as pd

    return pd.DataFrame({"protein_id": ["a", "b"], "split": ["train", "validation"],
                         "n_positives": [train_positives, validation_positives], "n_residues": [train_residues, 200]})


DATA_CASES = [
    ("single-positive", 1, {}, "config classifier.arms: smote, borderline_smote, smote_filtered, embedding_smote interpolate"),
    ("filter-knn", 6, {"filter.knn_k": 6, "classifier.arms": ["none"]}, "config filter.knn_k: 6 neighbours need more than 6"),
    ("quality-knn", 30, {"quality.knn_k": 50}, "config quality.knn_k: 50 neighbours need more than 50 training positives"),
    ("ratio-already-reached", 300, {"balance.target_positive_ratio": 0.5},
     "config balance.target_positive_ratio: 0.5 is already reached by the training split (0.750 positives)"),
    ("multiplier-memory", 30, {"generation.sample_multiplier": 10**9},
     "config generation.sample_multiplier: 1000000000 x 340 synthetic positives needed"),
]


@pytest.mark.parametrize("name, positives, overrides, fragment", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_config_checked_against_the_data(name, positives, overrides, fragment):
    with pytest.raises(InputError) as err:
        check_config_against_data(data_proteins(positives), full_config(overrides), n_features=200)
    assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_memory_estimate_uses_the_given_memory():
    config = full_config({"generation.sample_multiplier": 1000})
    # 1000 x 340 candidates x 200 features x 4 bytes x 2 = 0.51 GiB
    check_config_against_data(data_proteins(30), config, n_features=200, memory_bytes=2**30)
    with pytest.raises(InputError, match="about 0.5 GiB to hold"):
        check_config_against_data(data_proteins(30), config, n_features=200, memory_bytes=2**29)


@pytest.mark.workflow
def test_workflow_stops_before_any_job(tmp_path):
    """The wiring of check_config, end to end for one of its cases (test_config_check_names_the_key asserts each
    case's message in process, through the function the Snakefile calls)."""
    overrides, fragment = {"seed": 2**31 - 1}, "error: config seed: 2147483647 is too large"
    copy_config(tmp_path)
    config = write_config(tmp_path, overrides)
    result = run_snakemake(tmp_path, "-n", configfiles=(config,), cores=1, timeout=300)
    assert result.returncode != 0
    assert own_lines(result.stderr) == [line for line in result.stderr.splitlines() if line.startswith("error: ")], result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr and "File " not in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_workflow_refuses_duplicate_yaml_key(tmp_path):
    copy_config(tmp_path)
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "seed: 4\n")
    result = run_snakemake(tmp_path, "-n", configfiles=(config,), cores=1, timeout=300)
    assert result.returncode != 0
    assert f"error: {config}: line" in result.stderr and "key 'seed' given twice" in result.stderr, result.stderr


# ---- errors that name the file -------------------------------------------------------------------------------------


def test_utf8_byte_order_mark_is_accepted(inputs):
    reference = prepare(inputs)
    (inputs / "labels.fa").write_bytes(b"\xef\xbb\xbf" + (inputs / "labels.fa").read_bytes())
    assert prepare(inputs).drop(columns="structure_path").equals(reference.drop(columns="structure_path"))


def test_non_ascii_names_line_and_bytes(tmp_path):
    path = tmp_path / "labels.fa"
    path.write_bytes(b">p1\nACD\n010\n>p2 prot\xc3\xa9ine\nAC\n01\n")
    with pytest.raises(InputError) as err:
        read_label_fasta(path)
    assert str(err.value).startswith(f"{path}: not an ASCII text file (line 4, byte 21: b'\\xc3\\xa9in'...)")


def test_long_id_is_refused_as_an_id(inputs):
    records = records_text(inputs / "labels.fa")
    records[0][0] = ">" + "A" * 300
    write_records(inputs / "labels.fa", records)
    with pytest.raises(InputError) as err:
        prepare(inputs)
    message = str(err.value)
    assert "is 300 characters, at most 100 (ids name files)" in message and len(message) < 300 and "\n" not in message


FULL_DISK = """
import resource, signal, sys
import pandas as pd
from siteaug.runtime.io import InputError, write_parquet, write_json
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then fails the write with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    {call}
except InputError as err:
    print(err); sys.exit(3)
"""


@pytest.mark.parametrize("call", [
    "write_parquet(pd.DataFrame({'x': range(100000)}), sys.argv[1] + '/t.parquet')",
    "write_json({'x': list(range(100000))}, sys.argv[1] + '/t.json')",
], ids=["parquet", "json"])
def test_write_beyond_the_space_limit_names_the_file(tmp_path, call):
    """A real write failure (the process's file-size limit: EFBIG, handled like ENOSPC and EDQUOT), no mock."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", FULL_DISK.format(call=call), str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr[-2000:]
    name = "t.parquet" if "parquet" in call else "t.json"
    assert f"{tmp_path / name}: cannot write (file too large" in result.stdout and "free space in" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary file


def test_truncated_parquet_names_the_file(tmp_path):
    import pandas as pd

    path = tmp_path / "residues.parquet"
    write_parquet(pd.DataFrame({"x": np.arange(1000.0)}), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(StorageError) as err:
        read_parquet(path)
    assert str(err.value).startswith(f"{path}: unreadable Parquet file (") and "delete it and rerun" in str(err.value)


@pytest.mark.workflow
def test_workflow_with_truncated_intermediate_stops_in_one_line(tmp_path):
    """prepare and features run, then features/residues.parquet is cut short: the next rule names it."""
    copy_config(tmp_path)
    config = write_config(tmp_path, {"classifier.arms": ["none"], "classifier.ratio_sweep": []})
    first = run_snakemake(tmp_path, "--until", "features", configfiles=(config,), cores=1, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    residues = tmp_path / "results" / "features" / "residues.parquet"
    residues.write_bytes(residues.read_bytes()[: residues.stat().st_size // 2])
    result = run_snakemake(tmp_path, "--until", "train_critic", configfiles=(config,), cores=1, timeout=600)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    # Here the workflow's own parse-time check reads the file's footer first; a rule reading it says the same.
    assert len(errors) == 1 and "results/features/residues.parquet: unreadable Parquet file" in errors[0], result.stderr[-3000:]
    assert "delete it and rerun" in errors[0] and "Traceback" not in result.stderr


# ---- arms that cannot be what their name says ---------------------------------------------------------------------


def test_diffusion_without_synthetic_rows_gets_no_verdict(tmp_path):
    import json

    from helpers import write_report
    from test_report import _arm

    predictions = {"none": _arm(0.3, 1), "smote": _arm(0.35, 2), "diffusion": _arm(2.0, 3)}
    reason = "it trained on 0 synthetic rows"
    write_report(predictions, tmp_path, n_resamples=1000, no_verdict={"diffusion": reason, "absent_arm": "x"})
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert [v["arm"] for v in data["verdicts"]] == ["none", "smote"] and data["no_verdict"] == {"diffusion": reason}
    assert "diffusion" in {m["arm"] for m in data["metrics"]}  # its metrics stay
    import pandas as pd
    differences = pd.read_csv(tmp_path / "differences.tsv", sep="\t")
    assert set(differences.loc[differences["arm"] == "diffusion", "verdict"]) == {"no verdict"}
    page = (tmp_path / "report.html").read_text()
    assert f"No verdict for diffusion: {reason}" in page


def test_zero_width_precomputed_group_is_refused(tmp_path):
    from siteaug.features.precomputed import group_width

    (tmp_path / "emb").mkdir()
    np.save(tmp_path / "emb" / "p1_A.npy", np.zeros((7, 0), np.float32))
    with pytest.raises(InputError) as err:
        group_width(tmp_path / "emb", "emb", "p1_A")
    assert str(err.value) == f"{tmp_path / 'emb' / 'p1_A.npy'}: record p1_A: feature group 'emb' has 0 columns (shape (7, 0)); it would add no features"


# ---- end to end: prepare stops with one line and writes nothing ----------------------------------------------------


def one_training_positive(root: Path) -> None:
    """Every training protein (under the tiny config's seed and fractions) loses its positives but one residue."""
    records = records_text(root / "labels.fa")
    split = split_proteins([r[0][1:] for r in records], SPLIT["validation_fraction"], SPLIT["test_fraction"], SPLIT["seed"])
    first = True
    for record, part in zip(records, split):
        if part == "train":
            record[2] = ("1" if first else "0") + "0" * (len(record[2]) - 1)
            first = False
    write_records(root / "labels.fa", records)


def external_overlap(root: Path) -> dict:
    ext = external_copy(root)
    return {"input.external_test_labels": str(ext / "labels.fa"), "input.external_test_structures": str(ext / "pdb")}


E2E_PREPARE = [
    ("single-training-positive", one_training_positive, "error: config classifier.arms: smote, borderline_smote, smote_filtered, embedding_smote interpolate"),
    ("external-overlap", external_overlap, "record renamed_A has the same sequence as record demo0000_A"),
]


@pytest.mark.workflow
@pytest.mark.parametrize("name, mutate, fragment", E2E_PREPARE, ids=[c[0] for c in E2E_PREPARE])
def test_workflow_stops_in_prepare(demo_template, tmp_path, name, mutate, fragment):
    shutil.copytree(demo_template, tmp_path / "inputs")
    copy_config(tmp_path)
    extra = mutate(tmp_path / "inputs") or {}
    config = write_config(tmp_path, {"input.source": "files", "input.labels": "inputs/labels.fa",
                                     "input.structures": "inputs/pdb", **extra})
    result = run_snakemake(tmp_path, configfiles=(config,), cores=1, timeout=300)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr[-3000:]
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file() and "logs" not in p.parts]
    assert written == [], written


def test_existing_results_checked_unless_inputs_are_newer(tmp_path):
    """A config changed after prepare ran is checked against the existing protein table at parse time; a label file
    newer than that table means prepare runs again (and checks), so the stale table must not block the run."""
    import os

    from siteaug.runtime.config_checks import check_config_against_existing_results

    write_parquet(data_proteins(3), tmp_path / "results" / "data" / "proteins.parquet")
    labels = tmp_path / "labels.fa"
    labels.write_text(">a\nA\n1\n")
    old = (tmp_path / "results" / "data" / "proteins.parquet").stat().st_mtime - 10
    os.utime(labels, (old, old))
    config = full_config({"classifier.arms": ["none"]})
    with pytest.raises(InputError, match="config filter.knn_k: 5 neighbours need more than 5 training positives"):
        check_config_against_existing_results(config, tmp_path / "results", [str(labels)])
    os.utime(labels, None)
    check_config_against_existing_results(config, tmp_path / "results", [str(labels)])
    check_config_against_existing_results(config, tmp_path / "nothing")


def test_truncated_model_file_names_the_file(tmp_path):
    from conftest import tiny_model
    from siteaug.generative.diffusion import load_model, save_model

    path = tmp_path / "model.pt"
    save_model(tiny_model(), path, {})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(StorageError) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: unreadable model file (") and "delete it and rerun" in str(err.value)


def test_pdb_with_byte_order_mark_reads_the_same(inputs):
    from siteaug.inputs.pdb import read_chain_atoms

    pdb = inputs / "pdb" / "demo0000_A.pdb"
    reference = read_chain_atoms(pdb, "A")
    assert pdb.read_text().startswith("ATOM")  # the first atom sits right behind the mark
    pdb.write_bytes(b"\xef\xbb\xbf" + pdb.read_bytes())
    again = read_chain_atoms(pdb, "A")
    assert again.sequence == reference.sequence and np.array_equal(again.backbone, reference.backbone)


def test_utf16_label_file_is_named(tmp_path):
    path = tmp_path / "labels.fa"
    path.write_bytes(">p1\nACD\n010\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16 text"):
        read_label_fasta(path)


@pytest.mark.workflow
def test_workflow_bad_ablation_setting_is_one_line(tmp_path):
    copy_config(tmp_path)
    config = write_config(tmp_path, {"report.feature_ablation": [["sequence", "pssm"]]})
    result = run_snakemake(tmp_path, "-n", configfiles=(config,), cores=1, timeout=300)
    assert result.returncode != 0
    lines = [line for line in own_lines(result.stderr) if not line.startswith("Config file")]
    assert len(lines) == 1 and lines[0].startswith("error: config report.feature_ablation"), result.stderr
