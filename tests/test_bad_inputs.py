"""The bad-input corpus: every malformed input stops the run with ONE line naming the file and record (or config key).

Every input-file case is checked at library level: ``prepare_proteins``, the function the ``prepare`` rule's script
calls, with the arguments the rule passes from the validated config (fast, in process). One case of each error path
(label file, its encoding, a structure file's location, a PDB file's content, the split) also runs end to end through
Snakemake, proving the wiring every case shares: non-zero exit, exactly one ``error: ...`` line on stderr, no
traceback, no output written. All cases share one demo made once.
Decisions documented here and in the README:

- lowercase residues are upper-cased; ``X`` is accepted; other letters are rejected unless
  ``input.unknown_residue: map_to_x`` (then they become X); non-letters are always rejected;
- Windows (CRLF) and old Mac (CR) line endings and blank lines are accepted; a record wrapped over lines is rejected;
- ``prepare`` needs only the Cα of each residue; the structure features need N, CA, C and O (error in ``features``);
- a protein with no positive (or only positive) residues is kept, with a warning in the log; a validation, test or
  training split without any positive is an error.
"""
from __future__ import annotations

import ast
import logging
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from helpers import REPO, config_with, copy_config, run_snakemake, tiny_yaml, write_config
from siteaug.features.precomputed import load_distance_map, load_feature_group
from siteaug.features.residues import build_feature_tables
from siteaug.generative.diffusion import load_model
from siteaug.inputs.demo import make_demo
from siteaug.inputs.prepare import prepare_proteins, split_proteins
from siteaug.runtime.io import InputError, read_label_fasta

TINY = tiny_yaml()
SPLIT = dict(validation_fraction=TINY["split"]["validation"], test_fraction=TINY["split"]["test"], seed=TINY["seed"])
# The config of the end-to-end cases: tiny.yaml reading the files under inputs/.
FILES = {"input": {"source": "files", "labels": "inputs/labels.fa", "structures": "inputs/pdb"}}
FIRST = "demo0000_A"
LAST = "demo0011_A"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory) -> Path:
    """12 small demo proteins (labels.fa + pdb/), made once and copied for every case."""
    root = tmp_path_factory.mktemp("bad_input_demo")
    make_demo(root, n_proteins=12, min_length=30, max_length=40, seed=0)
    return root


@dataclass
class Inputs:
    root: Path

    @property
    def labels(self) -> Path:
        return self.root / "labels.fa"

    @property
    def pdb_dir(self) -> Path:
        return self.root / "pdb"

    def pdb(self, protein_id: str = FIRST) -> Path:
        return self.pdb_dir / f"{protein_id}.pdb"

    def edit_labels(self, edit: Callable[[list[str]], None]) -> None:
        lines = self.labels.read_text().splitlines()
        edit(lines)
        self.labels.write_text("\n".join(lines) + "\n")

    def edit_pdb(self, edit: Callable[[list[str]], list[str]], protein_id: str = FIRST) -> None:
        lines = self.pdb(protein_id).read_text().splitlines()
        self.pdb(protein_id).write_text("\n".join(edit(lines)) + "\n")


def copy_inputs(template: Path, where: Path) -> Inputs:
    shutil.copytree(template, where)
    return Inputs(where)


# ---- mutations -------------------------------------------------------------------------------------------------


def set_line(index: int, value: Callable[[str], str]):
    return lambda inputs: inputs.edit_labels(lambda lines: lines.__setitem__(index, value(lines[index])))


def other_letter(letter: str) -> str:
    return "G" if letter != "G" else "A"


def zero_labels_of(split_name: str):
    """Set every label of the proteins that the configured seed puts in ``split_name`` to 0."""

    def mutate(inputs: Inputs) -> None:
        def edit(lines):
            ids = [line[1:] for line in lines[0::3]]
            split = split_proteins(ids, SPLIT["validation_fraction"], SPLIT["test_fraction"], SPLIT["seed"])
            for k, part in enumerate(split):
                if part == split_name or split_name == "all":
                    lines[3 * k + 2] = "0" * len(lines[3 * k + 2])

        inputs.edit_labels(edit)

    return mutate


def atom_lines(lines: list[str]) -> list[int]:
    return [k for k, line in enumerate(lines) if line.startswith("ATOM")]


def ca_lines(lines: list[str]) -> list[int]:
    return [k for k in atom_lines(lines) if lines[k][12:16].strip() == "CA"]


def replace_columns(line: str, start: int, end: int, text: str) -> str:
    return line[:start] + text.rjust(end - start) + line[end:]


def edit_ca_x(text: str):
    """Put ``text`` in the x column of the third residue's CA."""

    def edit(lines):
        k = ca_lines(lines)[2]
        lines[k] = replace_columns(lines[k], 30, 38, text)
        return lines

    return edit


def cut_mid_line(lines):
    k = atom_lines(lines)[len(atom_lines(lines)) // 2]
    return lines[:k] + [lines[k][:40]]  # the file ends inside the coordinates of an atom line


def keep_first_half(lines):
    atoms = atom_lines(lines)
    return lines[: atoms[len(atoms) // 2]]  # whole lines, but half the residues are gone


def drop_third_ca(lines):
    k = ca_lines(lines)[2]
    return lines[:k] + lines[k + 1 :]


def rename_chains(lines):
    """Chain A becomes two chains B and C, so the id's chain A is absent from a multi-chain file."""
    atoms = atom_lines(lines)
    half = atoms[len(atoms) // 2]
    return [replace_columns(line, 21, 22, "B" if k < half else "C") if k in atoms else line for k, line in enumerate(lines)]


def atoms_to_hetatm(lines):
    return [("HETATM" + line[6:]) if line.startswith("ATOM") else line for line in lines]


def write_bytes(data: bytes, target: str = "labels"):
    def mutate(inputs: Inputs) -> None:
        (inputs.labels if target == "labels" else inputs.pdb()).write_bytes(data)

    return mutate


def wrap_line(index: int):
    def edit(lines):
        lines[index : index + 1] = [lines[index][:10], lines[index][10:]]

    return lambda inputs: inputs.edit_labels(edit)


# ---- the corpus --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Inputs], None]
    fragment: str  # part of the expected error message
    names: tuple[str, ...]  # what the message must name: file (base name) and record
    end_to_end: bool = False  # True: also run through Snakemake (one case per error path; see the module docstring)


LABELS = "labels.fa"
PDB = f"{FIRST}.pdb"
CASES = [
    Case("length-mismatch", set_line(2, lambda s: s[:-1]), "label line has", (LABELS, FIRST)),
    Case("label-not-binary", set_line(2, lambda s: "2" + s[1:]), "labels must be 0/1, found '2'", (LABELS, FIRST),
         end_to_end=True),
    Case("label-letter", set_line(5, lambda s: s[:-1] + "x"), "labels must be 0/1, found 'x'", (LABELS, "demo0001_A")),
    Case("unknown-residue", set_line(1, lambda s: "B" + s[1:]), "unknown residue letter(s) 'B'", (LABELS, FIRST)),
    Case("non-letter-residue", set_line(4, lambda s: s[:3] + "*" + s[4:]), "unknown residue letter(s) '*'",
         (LABELS, "demo0001_A")),
    Case("duplicate-id", lambda i: i.edit_labels(lambda lines: lines.extend(lines[:3])), "duplicate id, first seen at line 1",
         (LABELS, FIRST)),
    Case("empty-file", write_bytes(b""), "file is empty", (LABELS,)),
    Case("blank-lines-only", write_bytes(b"\n  \r\n\t\n"), "file is empty", (LABELS,)),
    Case("no-header", lambda i: i.edit_labels(lambda lines: lines.pop(0)), "expected a '>id' header", (LABELS, "line 1")),
    Case("empty-id", set_line(0, lambda s: ">"), "empty id", (LABELS, "record ?")),
    Case("record-cut-short", lambda i: i.edit_labels(lambda lines: lines.pop()), "cut short", (LABELS, LAST)),
    Case("sequence-wrapped", wrap_line(1), "wrapped over several lines", (LABELS, FIRST)),
    Case("labels-wrapped", wrap_line(5), "wrapped over several lines", (LABELS, "demo0001_A")),
    Case("id-with-slash", set_line(0, lambda s: ">demo/0000_A"), "protein id 'demo/0000_A'", (LABELS,)),
    Case("id-with-dotdot", set_line(0, lambda s: ">../demo0000_A"), "protein id '../demo0000_A'", (LABELS,)),
    Case("not-ascii", set_line(0, lambda s: s + " prot\u00e9ine"), "not an ASCII text file", (LABELS,), end_to_end=True),
    Case("missing-pdb", lambda i: i.pdb().unlink(), "structure file", (LABELS, FIRST, PDB)),
    Case("id-without-pdb", set_line(0, lambda s: ">ghost_A"), "not found", (LABELS, "ghost_A"), end_to_end=True),
    Case("empty-pdb", write_bytes(b"", target="pdb"), "no ATOM records", (PDB,)),
    Case("pdb-only-hetatm", lambda i: i.edit_pdb(atoms_to_hetatm), "no ATOM records", (PDB,)),
    Case("pdb-cut-mid-line", lambda i: i.edit_pdb(cut_mid_line), "truncated or garbled atom coordinates", (PDB,),
         end_to_end=True),
    Case("pdb-cut-at-line", lambda i: i.edit_pdb(keep_first_half), "differs from the label file", (PDB, FIRST)),
    Case("pdb-sequence-differs", set_line(1, lambda s: s[:4] + other_letter(s[4]) + s[5:]), "at position 5", (PDB, FIRST)),
    Case("pdb-missing-ca", lambda i: i.edit_pdb(drop_third_ca), "has no CA atom", (PDB, " 3 of chain A")),
    Case("pdb-missing-chain", lambda i: i.edit_pdb(rename_chains), "chain 'A' not found", (PDB,)),
    Case("pdb-unparsable-coordinates", lambda i: i.edit_pdb(edit_ca_x("1.2.3")), "unparsable CA coordinates", (PDB,)),
    Case("pdb-nan-coordinates", lambda i: i.edit_pdb(edit_ca_x("nan")), "NaN or inf", (PDB, FIRST)),
    Case("pdb-inf-coordinates", lambda i: i.edit_pdb(edit_ca_x("-inf")), "NaN or inf", (PDB, FIRST)),
    Case("validation-without-positives", zero_labels_of("validation"), "validation split (seed 3) has no positive",
         (LABELS,), end_to_end=True),
    Case("test-without-positives", zero_labels_of("test"), "test split (seed 3) has no positive", (LABELS,)),
    Case("no-positives-at-all", zero_labels_of("all"), "has no positive residues", (LABELS,)),
    # Only at library level: end to end, Snakemake itself stops first (a missing input).
    Case("structure-folder-missing", lambda i: shutil.rmtree(i.pdb_dir), "not found", (LABELS, FIRST)),
]


def assert_one_line(message: str, case: Case) -> None:
    assert "\n" not in message, message
    assert case.fragment in message, message
    for name in case.names:
        assert name in message, (name, message)


def rule_arguments(inputs: Inputs) -> tuple[list, dict]:
    """The arguments workflow_scripts/prepare.py passes prepare_proteins in the end-to-end cases' run: the prepare
    rule's params from the config of those cases (tiny.yaml reading ``inputs``), every schema default filled in."""
    config = config_with({"input": {**FILES["input"], "labels": str(inputs.labels), "structures": str(inputs.pdb_dir)}})
    validate(config, str(REPO / "config" / "schema.yaml"))
    split, source = config["split"], config["input"]
    return ([source["labels"], source["structures"], split["validation"], split["test"], config["seed"]],
            dict(missing_structure=source["missing_structure"], unknown_residue=source["unknown_residue"],
                 identity_threshold=split["identity_threshold"], external_test_overlap=source["external_test_overlap"]))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_library_rejects(demo_template, tmp_path, case):
    inputs = copy_inputs(demo_template, tmp_path / "inputs")
    case.mutate(inputs)
    args, kwargs = rule_arguments(inputs)
    with pytest.raises(InputError) as err:
        prepare_proteins(*args, **kwargs)
    assert_one_line(str(err.value), case)



def test_corpus_size():
    assert len(CASES) + len(CONFIG_CASES) + len(NPY_CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


# ---- accepted on purpose ----------------------------------------------------------------------------------------


def prepare(inputs: Inputs, **kwargs):
    return prepare_proteins(str(inputs.labels), str(inputs.pdb_dir), **SPLIT, **kwargs)


def test_line_endings_and_lowercase_are_accepted(demo_template, tmp_path):
    reference = prepare(copy_inputs(demo_template, tmp_path / "reference"))
    for name, transform in [("crlf", lambda t: t.replace("\n", "\r\n")), ("cr", lambda t: t.replace("\n", "\r")),
                            ("blank-lines", lambda t: t.replace("\n>", "\n\n>")),
                            ("lowercase", lambda t: "\n".join(s if s.startswith(">") else s.lower() for s in t.split("\n")))]:
        inputs = copy_inputs(demo_template, tmp_path / name)
        inputs.labels.write_bytes(transform(inputs.labels.read_text()).encode())
        table = prepare(inputs)
        assert table.drop(columns="structure_path").equals(reference.drop(columns="structure_path")), name


def test_map_to_x_turns_unknown_letters_into_x(tmp_path):
    path = tmp_path / "labels.fa"
    path.write_text(">p1\nACBUz\n01010\n")
    with pytest.raises(InputError, match="unknown residue"):
        read_label_fasta(path)
    assert read_label_fasta(path, unknown_residue="map_to_x")[0].sequence == "ACXXX"


def test_missing_backbone_atom_stops_the_structure_features(demo_template, tmp_path):
    """prepare reads only the Cα; the structure feature group needs N, CA, C and O and names the residue."""
    inputs = copy_inputs(demo_template, tmp_path / "inputs")
    inputs.edit_pdb(lambda lines: [line for line in lines if not (line[12:16].strip() == "O" and line[22:26].strip() == "3")])
    table = prepare(inputs)
    with pytest.raises(InputError) as err:
        build_feature_tables(table)
    assert str(inputs.pdb()) in str(err.value) and " 3 of chain A lacks backbone atom(s) O" in str(err.value)
    assert "\n" not in str(err.value)


def test_nan_in_a_non_ca_atom_is_an_input_error(demo_template, tmp_path):
    inputs = copy_inputs(demo_template, tmp_path / "inputs")

    def nan_in_third_n(lines):
        k = [k for k in atom_lines(lines) if lines[k][12:16].strip() == "N"][2]
        lines[k] = replace_columns(lines[k], 30, 38, "nan")
        return lines

    inputs.edit_pdb(nan_in_third_n)
    # In a child process: NaN coordinates once crashed freesasa with a segfault, which must fail this test, not pytest.
    code = ("import sys; from siteaug.inputs.prepare import prepare_proteins; from siteaug.features.residues import build_feature_tables\n"
            "from siteaug.runtime.io import InputError\n"
            f"t = prepare_proteins({str(inputs.labels)!r}, {str(inputs.pdb_dir)!r}, 0.2, 0.2, 3)\n"
            "try:\n    build_feature_tables(t)\nexcept InputError as err:\n    print(err); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3 and str(inputs.pdb()) in result.stdout, (result.returncode, result.stderr[-2000:])


def test_precomputed_error_surfaces_from_worker_processes(demo_template, tmp_path):
    inputs = copy_inputs(demo_template, tmp_path / "inputs")
    table = prepare(inputs)
    folder = tmp_path / "pssm"
    folder.mkdir()
    for pid, length in zip(table["protein_id"], table["n_residues"]):
        np.save(folder / f"{pid}.npy", np.ones((length, 5), np.float32))
    bad = table["protein_id"].iloc[3]
    np.save(folder / f"{bad}.npy", np.ones((table["n_residues"].iloc[3] - 1, 5), np.float32))
    for threads in (1, 2):
        with pytest.raises(InputError) as err:
            build_feature_tables(table, threads=threads, groups=("sequence", "pssm"), precomputed={"pssm": str(folder)})
        assert f"{folder / bad}.npy: record {bad}: shape" in str(err.value) and "\n" not in str(err.value)


def test_one_class_proteins_are_kept_with_a_warning(demo_template, tmp_path, caplog):
    inputs = copy_inputs(demo_template, tmp_path / "inputs")
    ids = [r.protein_id for r in read_label_fasta(inputs.labels)]
    train = [pid for pid, part in zip(ids, split_proteins(ids, SPLIT["validation_fraction"], SPLIT["test_fraction"],
                                                          SPLIT["seed"])) if part == "train"]
    no_positive, only_positive = train[0], train[1]

    def edit(lines):
        for k in range(0, len(lines), 3):
            if lines[k][1:] in (no_positive, only_positive):
                lines[k + 2] = ("0" if lines[k][1:] == no_positive else "1") * len(lines[k + 2])

    inputs.edit_labels(edit)
    with caplog.at_level(logging.WARNING, logger="siteaug.inputs.prepare"):
        table = prepare(inputs)
    assert {no_positive, only_positive} <= set(table["protein_id"])
    assert f"with no positive residues kept: {no_positive}" in caplog.text
    assert f"with only positive residues kept: {only_positive}" in caplog.text


# ---- configuration ----------------------------------------------------------------------------------------------


CONFIG_CASES = [
    ("unknown-top-key", "sede", 1, "sede"),
    ("unknown-nested-key", "diffusion.hiden", 64, "hiden"),
    ("ratio-zero", "balance.target_positive_ratio", 0.0, "target_positive_ratio"),
    ("ratio-one", "balance.target_positive_ratio", 1.0, "target_positive_ratio"),
    ("ratio-above-one", "balance.target_positive_ratio", 1.2, "target_positive_ratio"),
    ("threshold-negative", "filter.quality_threshold", -0.1, "quality_threshold"),
    ("threshold-above-one", "filter.quality_threshold", 1.01, "quality_threshold"),
    ("shards-zero", "generation.shards", 0, "shards"),
    ("split-validation-zero", "split.validation", 0.0, "validation"),
    ("split-test-half", "split.test", 0.5, "test"),
    ("seed-negative", "seed", -1, "seed"),
    ("threads-zero", "threads", 0, "threads"),
    ("source-unknown", "input.source", "folder", "source"),
    ("unknown-residue-policy", "input.unknown_residue", "ignore", "unknown_residue"),
    ("knn-zero", "filter.knn_k", 0, "knn_k"),
    ("ratio-as-text", "balance.target_positive_ratio", "0.5", "target_positive_ratio"),
    ("quantile-transform-as-text", "diffusion.quantile_transform", "yes", "quantile_transform"),
    ("discrete-columns-as-number", "diffusion.discrete_columns", 1, "discrete_columns"),
    ("circular-columns-as-text", "diffusion.circular_columns", "no", "circular_columns"),
]


@pytest.mark.parametrize("name, key, value, named", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_schema_rejects(name, key, value, named):
    with pytest.raises(WorkflowError) as err:
        validate(config_with({key: value}), str(REPO / "config" / "schema.yaml"))
    assert named in str(err.value)


def test_tiny_config_is_valid():
    validate(config_with(), str(REPO / "config" / "schema.yaml"))


# ---- end to end through Snakemake ---------------------------------------------------------------------------------

E2E = [c for c in CASES if c.end_to_end]


@pytest.mark.workflow
@pytest.mark.parametrize("case", E2E, ids=[c.name for c in E2E])
def test_workflow_stops_in_prepare(demo_template, tmp_path, case):
    copy_inputs(demo_template, tmp_path / "inputs")
    copy_config(tmp_path)
    case.mutate(Inputs(tmp_path / "inputs"))
    config = write_config(tmp_path, FILES)
    result = run_snakemake(tmp_path, configfiles=(config,), cores=1, timeout=300)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert_one_line(errors[0], case)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    written = [p for p in (tmp_path / "results").rglob("*") if p.is_file() and "logs" not in p.parts]
    assert written == [], written  # not even a temporary file


# ---- precomputed .npy features and distance maps -----------------------------------------------------------------

NPY_LENGTH, NPY_WIDTH, NPY_ID = 7, 4, "p1_A"


def save_npy(folder: Path, array) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{NPY_ID}.npy"
    np.save(path, array, allow_pickle=True)  # pickled object arrays must be refused on loading
    return path


def with_value(value):
    array = np.zeros((NPY_LENGTH, NPY_WIDTH), np.float32)
    array[4, 2] = value
    return array


NPY_CASES = [
    ("wrong-width", np.zeros((NPY_LENGTH, NPY_WIDTH + 1), np.float32), "does not match the sequence length"),
    ("length-mismatch", np.zeros((NPY_LENGTH + 2, NPY_WIDTH), np.float32), "does not match the sequence length 7"),
    ("one-dimensional", np.zeros(NPY_LENGTH, np.float32), "must be 2-D"),
    ("three-dimensional", np.zeros((NPY_LENGTH, NPY_WIDTH, 1), np.float32), "must be 2-D"),
    ("string-dtype", np.full((NPY_LENGTH, NPY_WIDTH), "a"), "is not a number type"),
    ("complex-dtype", np.zeros((NPY_LENGTH, NPY_WIDTH), np.complex64), "is not a number type"),
    ("object-dtype-pickle", np.zeros((NPY_LENGTH, NPY_WIDTH), object), "unreadable .npy file"),
    ("nan", with_value(np.nan), "non-finite value nan at residue 5, column 3"),
    ("inf", with_value(-np.inf), "non-finite value -inf at residue 5, column 3"),
    ("not-npy", b"this is not a numpy file", "unreadable .npy file"),
    ("truncated", None, "unreadable .npy file"),
]


@pytest.mark.parametrize("name, content, fragment", NPY_CASES, ids=[c[0] for c in NPY_CASES])
def test_precomputed_feature_file_rejected(tmp_path, name, content, fragment):
    folder = tmp_path / "pssm"
    if content is None:  # a good file cut short, as an interrupted copy would leave it
        path = save_npy(folder, np.zeros((NPY_LENGTH, NPY_WIDTH), np.float32))
        path.write_bytes(path.read_bytes()[:-20])
    elif isinstance(content, bytes):
        folder.mkdir()
        path = folder / f"{NPY_ID}.npy"
        path.write_bytes(content)
    else:
        path = save_npy(folder, content)
    with pytest.raises(InputError) as err:
        load_feature_group(folder, "pssm", NPY_ID, NPY_LENGTH, NPY_WIDTH)
    message = str(err.value)
    assert "\n" not in message and fragment in message and str(path) in message and f"record {NPY_ID}" in message


def test_precomputed_missing_file(tmp_path):
    (tmp_path / "pssm").mkdir()
    with pytest.raises(InputError, match=f"record {NPY_ID}: feature group 'pssm' file not found"):
        load_feature_group(tmp_path / "pssm", "pssm", NPY_ID, NPY_LENGTH, NPY_WIDTH)


@pytest.mark.parametrize(
    "array, fragment",
    [(np.zeros((NPY_LENGTH, NPY_LENGTH + 1)), "distance map has shape (7, 8), expected (7, 7)"),
     (np.full((NPY_LENGTH, NPY_LENGTH), np.nan), "non-finite value nan at residue 1"),
     (np.full((NPY_LENGTH, NPY_LENGTH), "1.0"), "is not a number type")],
    ids=["shape", "nan", "text"],
)
def test_distance_map_rejected(tmp_path, array, fragment):
    path = save_npy(tmp_path / "dist", array)
    with pytest.raises(InputError) as err:
        load_distance_map(tmp_path / "dist", NPY_ID, NPY_LENGTH)
    assert fragment in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


# ---- no code runs from a user's file -------------------------------------------------------------------------------


class CreatesFileWhenUnpickled:
    """Unpickling this calls open(marker, "w"): if the marker exists after a load, the load ran pickled code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_pickled_npy_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    array = np.empty((NPY_LENGTH, NPY_WIDTH), object)
    array[:] = CreatesFileWhenUnpickled(marker)
    save_npy(tmp_path / "pssm", array)
    with pytest.raises(InputError, match="unreadable .npy file"):
        load_feature_group(tmp_path / "pssm", "pssm", NPY_ID, NPY_LENGTH, NPY_WIDTH)
    assert not marker.exists()


def test_model_file_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"config": {}, "state_dict": {}, "extra": {"x": CreatesFileWhenUnpickled(marker)}}, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_model(tmp_path / "model.pt")
    assert not marker.exists()


def loader_calls(tree: ast.AST):
    """(module.function name, keywords) of every call like ``torch.load(...)``, ``np.load(...)``, ``pickle.load(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            yield f"{node.func.value.id}.{node.func.attr}", {k.arg: k.value for k in node.keywords}


def skops_io_names(tree: ast.AST) -> set[str]:
    """The names ``skops.io`` is imported under (``import skops.io as x``, ``from skops import io as x``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname for alias in node.names if alias.name == "skops.io" and alias.asname}
        elif isinstance(node, ast.ImportFrom) and node.module == "skops":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "io"}
    return names


def test_every_loader_refuses_pickle():
    """torch.load only with weights_only=True, np.load only with allow_pickle=False, skops loads only with an explicit
    trusted-type list, and no pickle loading at all."""
    problems = []
    for path in sorted([*(REPO / "siteaug").rglob("*.py"), *(REPO / "workflow_scripts").glob("*.py")]):
        tree = ast.parse(path.read_text())
        skops_loads = {f"{name}.load" for name in skops_io_names(tree)}
        for name, keywords in loader_calls(tree):
            safe = {"torch.load": ("weights_only", True), "np.load": ("allow_pickle", False)}.get(name)
            if safe and not (isinstance(keywords.get(safe[0]), ast.Constant) and keywords[safe[0]].value is safe[1]):
                problems.append(f"{path.name}: {name} without {safe[0]}={safe[1]}")
            if name in skops_loads and (keywords.get("trusted") is None or isinstance(keywords["trusted"], ast.Constant)):
                problems.append(f"{path.name}: {name} without a trusted-type list")
            if name in ("pickle.load", "pickle.loads", "joblib.load", "pd.read_pickle", "numpy.load"):
                problems.append(f"{path.name}: {name}")
    assert problems == []
