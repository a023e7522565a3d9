"""Input validation and atomic output for every stage.

Every output goes through :func:`atomic_path`: it is written under a temporary name in the same folder and renamed
into place only when complete, so a crash never leaves a half-written file that a rerun would trust.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# Ids become file names (PDB lookups, shard tables): allow only characters that cannot escape a folder.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class InputError(ValueError):
    """A user's input (file, record or config value) is invalid; the message is one line naming it."""


@dataclass(frozen=True)
class LabelRecord:
    protein_id: str
    sequence: str
    labels: str


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600; give the result the permissions an ordinary open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Strip pandas metadata so identical frames give byte-identical files regardless of pandas version.
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def write_json(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def check_protein_id(protein_id: str, where: str) -> str:
    if not _SAFE_ID.match(protein_id) or ".." in protein_id:
        raise InputError(
            f"{where}: protein id {protein_id!r} may only hold letters, digits, '_', '-' and '.' (it names files)"
        )
    return protein_id


def read_label_fasta(path: str | os.PathLike, unknown_residue: str = "reject") -> list[LabelRecord]:
    """Read 3-line records (``>id``, sequence, 0/1 labels) and validate each one.

    Lowercase residues are upper-cased; ``X`` is accepted (it gets an all-zero one-hot); any other letter outside
    the 20 standard amino acids is an error unless ``unknown_residue == "map_to_x"``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not an ASCII text file (byte {err.start})") from None
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{path}: file is empty")
    records: list[LabelRecord] = []
    seen: dict[str, int] = {}
    allowed = set(AMINO_ACIDS + "X")
    for start in range(0, len(lines), 3):
        chunk = lines[start : start + 3]
        line_no = start + 1
        if not chunk[0].startswith(">"):
            raise InputError(f"{path}: line {line_no}: expected a '>id' header, got {chunk[0][:30]!r}")
        pid = chunk[0][1:].split()[0] if chunk[0][1:].strip() else ""
        where = f"{path}: record {pid or '?'} (line {line_no})"
        if not pid:
            raise InputError(f"{where}: empty id")
        if len(chunk) < 3 or chunk[1].startswith(">") or chunk[2].startswith(">"):
            raise InputError(f"{where}: a record is 3 lines (>id, sequence, labels); this one is cut short")
        check_protein_id(pid, where)
        if pid in seen:
            raise InputError(f"{where}: duplicate id, first seen at line {seen[pid]}")
        seen[pid] = line_no
        seq, lab = chunk[1].upper(), chunk[2]
        bad = sorted(set(seq) - allowed)
        if bad:
            if unknown_residue != "map_to_x" or any(not c.isalpha() for c in bad):
                raise InputError(f"{where}: unknown residue letter(s) {''.join(bad)!r} in the sequence")
            seq = "".join(c if c in allowed else "X" for c in seq)
        if len(seq) != len(lab):
            raise InputError(f"{where}: sequence has {len(seq)} residues but the label line has {len(lab)}")
        if set(lab) - {"0", "1"}:
            raise InputError(f"{where}: labels must be 0/1, found {''.join(sorted(set(lab) - {'0', '1'}))!r}")
        records.append(LabelRecord(pid, seq, lab))
    return records
