"""Read and validate the inputs, then split proteins (never residues) into train / validation / test."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from siteaug.inputs.identity import identity_groups, similar_pairs
from siteaug.inputs.pdb import chain_from_id, read_ca_trace
from siteaug.runtime.io import InputError, LabelRecord, read_label_fasta

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def locate_structures(
    records: list[LabelRecord], label_path: str | Path, structure_dir: str | Path | None, missing_structure: str
) -> list[str]:
    """Return each record's PDB path ("" for none) after checking that the PDB sequence matches the record."""
    if not structure_dir and missing_structure != "error":
        # Precomputed-feature datasets (e.g. PPI-335) have no PDB files at all: one line, not one per record.
        log.info("no structure folder: all %d records use precomputed features or sequence graphs", len(records))
        return [""] * len(records)
    paths = []
    for record in records:
        path = Path(structure_dir) / f"{record.protein_id}.pdb" if structure_dir else None
        if path is None or not path.is_file():
            if missing_structure == "error":
                raise InputError(f"{label_path}: record {record.protein_id}: structure file {path} not found")
            log.warning("record %s: no structure file, using sequence neighbours as its graph", record.protein_id)
            paths.append("")
            continue
        sequence, ca = read_ca_trace(path, chain_from_id(record.protein_id))
        if not np.isfinite(ca).all():
            raise InputError(f"{path}: record {record.protein_id}: CA coordinates hold NaN or inf")
        if sequence != record.sequence:
            first = next((i for i, (a, b) in enumerate(zip(sequence, record.sequence)) if a != b), min(len(sequence), len(record.sequence)))
            raise InputError(
                f"{path}: record {record.protein_id}: PDB sequence ({len(sequence)} residues) differs from the label "
                f"file's ({len(record.sequence)}) at position {first + 1}"
            )
        paths.append(str(path))
    return paths


def split_proteins(protein_ids: list[str], validation: float, test: float, seed: int, groups: list[int] | None = None) -> list[str]:
    """Assign whole proteins to splits by a seeded permutation; the sizes round to the nearest protein.

    ``groups`` (one group index per protein, see :func:`siteaug.inputs.identity.identity_groups`) keeps the members of a group
    in one split: groups are taken in the order of their first member in the permutation and fill test, then
    validation, then train. Without groups, or with every protein alone in its group, the split is the same.
    """
    n = len(protein_ids)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test * n))
    n_validation = int(round(validation * n))
    if n - n_test - n_validation < 1 or (validation > 0 and n_validation < 1) or (test > 0 and n_test < 1):
        raise InputError(f"split: {n} proteins cannot fill validation={validation} and test={test} with at least one protein each")
    groups = list(range(n)) if groups is None else list(groups)
    members: dict[int, list[int]] = {}
    for k in order:  # groups in the order their first member appears in the permutation
        members.setdefault(groups[k], []).append(int(k))
    split = np.empty(n, dtype=object)
    filled = {"test": 0, "validation": 0}
    for group in members.values():
        part = next((name for name, size in (("test", n_test), ("validation", n_validation)) if filled[name] < size), "train")
        split[group] = part
        if part != "train":
            filled[part] += len(group)
    if (split == "train").sum() < 1 or (validation > 0 and filled["validation"] < 1) or (test > 0 and filled["test"] < 1):
        raise InputError(
            f"split: {n} proteins in {len(members)} identity groups cannot fill validation={validation} and "
            f"test={test} with at least one protein each (see split.identity_threshold)"
        )
    return split.tolist()


def protein_table(records: list[LabelRecord], structure_paths: list[str], split: list[str], source: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "protein_id": [r.protein_id for r in records],
            "sequence": [r.sequence for r in records],
            "labels": [r.labels for r in records],
            "split": split,
            "structure_path": structure_paths,
            "chain": [chain_from_id(r.protein_id) or "" for r in records],
            "n_residues": np.array([len(r.sequence) for r in records], dtype=np.int32),
            "n_positives": np.array([r.labels.count("1") for r in records], dtype=np.int32),
            "source": source,
        }
    )


def prepare_proteins(
    labels: str,
    structures: str | None,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    missing_structure: str = "error",
    unknown_residue: str = "reject",
    external_test_labels: str | None = None,
    external_test_structures: str | None = None,
    identity_threshold: float | None = 0.95,
    external_test_overlap: str = "error",
) -> pd.DataFrame:
    """Validate every record and structure, split proteins, and return the protein table.

    Proteins with identical sequences, or with sequence identity >= ``identity_threshold`` (None: identical only), go
    to one split together. With an external test set the internal split has no test part: the external proteins are
    the test split, and one that matches an internal protein at that identity is an error, unless
    ``external_test_overlap == "allow"``: then it is logged and named in the table's ``similar_to`` column.
    """
    records = read_label_fasta(labels, unknown_residue)
    external = read_label_fasta(external_test_labels, unknown_residue) if external_test_labels else []
    overlap = sorted({r.protein_id for r in records} & {r.protein_id for r in external})
    if overlap:
        raise InputError(f"{external_test_labels}: record {overlap[0]} also appears in {labels}; a test protein must not be trained on")
    similar_to = external_overlaps(records, external, labels, external_test_labels, identity_threshold, external_test_overlap)
    groups = identity_groups([r.protein_id for r in records], [r.sequence for r in records], identity_threshold)
    split = split_proteins([r.protein_id for r in records], validation_fraction, 0.0 if external else test_fraction, seed, groups)
    table = protein_table(records, locate_structures(records, labels, structures, missing_structure), split, "labels")
    if external:
        paths = locate_structures(external, external_test_labels, external_test_structures, missing_structure)
        table = pd.concat([table, protein_table(external, paths, ["test"] * len(external), "external_test")], ignore_index=True)
    table["similar_to"] = [""] * len(records) + similar_to
    for name in ("validation", "test"):
        part = table[table["split"] == name]
        if len(part) and part["n_positives"].sum() == 0:
            raise InputError(f"{labels}: the {name} split (seed {seed}) has no positive residues; change the seed or fractions")
    if table.loc[table["split"] == "train", "n_positives"].sum() == 0:
        raise InputError(f"{labels}: the training split has no positive residues; nothing to learn from")
    warn_one_class_proteins(table)
    return table


def external_overlaps(records: list[LabelRecord], external: list[LabelRecord], labels, external_labels,
                      threshold: float | None, policy: str) -> list[str]:
    """Per external record, the internal record it matches (identical, or identity >= ``threshold``), else ""."""
    if not external:
        return []
    pairs = similar_pairs([r.sequence for r in external], [r.sequence for r in records], 1.0 if threshold is None else threshold)
    similar_to = [""] * len(external)
    for i, j, identity in sorted(pairs, key=lambda p: (p[0], -p[2], p[1])):
        if similar_to[i]:
            continue
        what = "the same sequence as" if identity == 1.0 else f"sequence identity {identity:.3f} with"
        if policy != "allow":
            raise InputError(
                f"{external_labels}: record {external[i].protein_id} has {what} record {records[j].protein_id} of "
                f"{labels}; a test protein must not be trained on (input.external_test_overlap: allow keeps it, and the "
                "report says so)"
            )
        log.warning("external test protein %s has %s %s (kept: input.external_test_overlap is allow)",
                    external[i].protein_id, what, records[j].protein_id)
        similar_to[i] = records[j].protein_id
    return similar_to


def warn_one_class_proteins(table: pd.DataFrame) -> None:
    """Proteins with no positive (or no negative) residue are kept, since real sets hold them, but said in the log."""
    for what, mask in (("no positive", table["n_positives"] == 0),
                       ("only positive", table["n_positives"] == table["n_residues"])):
        if mask.any():
            ids = table.loc[mask, "protein_id"].tolist()
            log.warning("%d protein(s) with %s residues kept: %s%s", len(ids), what, ", ".join(ids[:5]),
                        " ..." if len(ids) > 5 else "")
