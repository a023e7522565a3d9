"""Input validation and atomic output for every stage.

Every output goes through :func:`atomic_path`: it is written under a temporary name in the same folder and renamed
into place only when complete, so a crash never leaves a half-written file that a rerun would trust.
"""
from __future__ import annotations

import contextlib
import copy
import errno
import glob
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


class StorageError(InputError):
    """An output cannot be written (disk full, quota, file-size limit) or an intermediate file is unreadable: the
    message names the file and what to do. An InputError, so rule scripts report it the same way (one line, exit 1)."""


# Ids become file names (<id>.pdb, <id>.npy); most file systems allow 255 bytes per name, and temporary names add more.
MAX_ID_LENGTH = 100
_NO_SPACE = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
             errno.EFBIG: "file too large for the file system or the process's file-size limit"}


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
    # A SIGKILL skips the cleanup below and leaves a temporary file; the rerun of the same output removes it
    # (only one job ever writes a given output, so no live writer's file is touched).
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        _raise_if_storage(err, path)
        raise
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600; give the result the permissions an ordinary open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            _raise_if_storage(err, path)
        raise


def _raise_if_storage(err: OSError, path: Path) -> None:
    """Disk full, quota or file-size limit while writing ``path``: a StorageError naming it (nothing partial is left)."""
    code = err.errno
    if code is None and "No space left on device" in str(err):  # Arrow's IOError carries the text, not the errno
        code = errno.ENOSPC
    if code in _NO_SPACE:
        raise StorageError(
            f"{path}: cannot write ({_NO_SPACE[code]}); nothing was left behind: free space in {path.parent} "
            "(or raise the limit) and rerun"
        ) from None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(df: pd.DataFrame, path: str | os.PathLike, compress_floats: bool = True) -> None:
    """Write ``df`` (index dropped) atomically; read it back with :func:`read_parquet`.

    ``compress_floats=False`` stores float columns uncompressed: for diffusion samples LZ4 saves nothing (median
    column of a generated demo shard: 99.8 % of its size) and costs ~40 % of the write (bench/parquet_write.py).
    Real feature tables do shrink (to ~50 %), hence the default.
    """
    table = _arrow_table(df)
    floats = {f.name for f in table.schema if pa.types.is_floating(f.type)}
    others = [name for name in table.column_names if name not in floats]
    compression = "lz4"
    if not compress_floats:
        compression = {name: ("none" if name in floats else "lz4") for name in table.column_names}
    with atomic_path(path) as tmp:
        # Arrow opens its file with O_TRUNC. On ext4, truncating a file and rewriting it makes close() start
        # writing every dirty page back (auto_da_alloc), about 0.15 s per 500 MB: let the writer create it fresh.
        # Freeing the reserved name is safe: it is random, and only one job ever writes a given output.
        tmp.unlink()
        # Dictionary encoding only where values repeat (ids, labels, splits): on float columns it is tried, fails and
        # falls back, which more than doubled the write time of a generated shard. Min/max statistics only there
        # too: nothing filters on a float column, and they cost ~10 % of the write. LZ4 reads ~3x faster than zstd.
        pq.write_table(table, tmp, compression=compression, use_dictionary=others, write_statistics=others)


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    # Strip pandas metadata so identical frames give byte-identical files regardless of pandas version.
    table = table.replace_schema_metadata(None)
    # A column without nulls (NaN counts as null) is stored as a required field: the writer then skips the
    # per-value definition levels, which were 60 % of the time to write a float column. pandas reads both alike.
    schema = pa.schema([field.with_nullable(table.column(i).null_count > 0) for i, field in enumerate(table.schema)])
    return table.cast(schema)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_parquet`; a truncated or corrupt file is a StorageError naming it."""
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise _unreadable(path, err) from None


def parquet_columns(path: str | os.PathLike) -> list[str]:
    """Column names from the file's footer, without reading the data."""
    try:
        return pq.read_schema(path).names
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise _unreadable(path, err) from None


def load_torch(path: str | os.PathLike, device="cpu"):
    """``torch.load`` of a state-dict file (``weights_only=True``: pickled code is refused with UnpicklingError, which
    passes through); a truncated or corrupt file is a StorageError naming it."""
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError) as err:  # PytorchStreamReader: "failed finding central directory", EINVAL, ...
        raise StorageError(
            f"{path}: unreadable model file ({' '.join(str(err).split())[:120]}); it was changed or cut short after it "
            "was written: delete it and rerun, and Snakemake remakes it"
        ) from None


def save_torch(payload: dict, path: str | os.PathLike) -> None:
    """``torch.save`` of a model's payload, atomically, with every tensor moved to the CPU first: the file then loads on
    a machine without the card it was trained on, and is the same whichever process or device fitted the model."""
    import torch

    def on_cpu(value):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu()
        if isinstance(value, dict):
            moved = copy.copy(value)  # its class and attributes: a state dict's _metadata, which load_state_dict reads
            for key, item in value.items():
                moved[key] = on_cpu(item)
            return moved
        if isinstance(value, list):
            return [on_cpu(item) for item in value]
        if isinstance(value, tuple):
            items = [on_cpu(item) for item in value]
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # a named tuple too
        return value

    with atomic_path(path) as tmp:
        torch.save(on_cpu(payload), tmp)


def _unreadable(path, err: Exception) -> StorageError:
    if isinstance(err, FileNotFoundError):
        return StorageError(f"{path}: file not found")
    reason = " ".join(str(err).split())[:200]
    return StorageError(
        f"{path}: unreadable Parquet file ({reason}); it was changed or cut short after it was written: delete it "
        "and rerun, and Snakemake remakes it"
    )


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
    if len(protein_id) > MAX_ID_LENGTH:
        raise InputError(
            f"{where}: protein id {protein_id[:20]!r}... is {len(protein_id)} characters, at most {MAX_ID_LENGTH} "
            "(ids name files)"
        )
    if not _SAFE_ID.match(protein_id) or ".." in protein_id:
        raise InputError(
            f"{where}: protein id {protein_id!r} may only hold letters, digits, '_', '-' and '.' (it names files)"
        )
    return protein_id


def read_label_fasta(path: str | os.PathLike, unknown_residue: str = "reject") -> list[LabelRecord]:
    """Read 3-line records (``>id``, sequence, 0/1 labels) and validate each one.

    Lowercase residues are upper-cased; ``X`` is accepted (it gets an all-zero one-hot); any other letter outside
    the 20 standard amino acids is an error unless ``unknown_residue == "map_to_x"``. Windows and old Mac line
    endings and blank lines are accepted; a sequence wrapped over several lines is an error (the label line could
    not be told apart from a wrapped part).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: label file not found")
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: UTF-16 text (byte-order mark {raw[:2]!r}); save it as ASCII or UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark (Windows editors write one): not part of the text
        raw = raw[3:]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"{path}: not an ASCII text file (line {line}, byte {err.start + 1}: {raw[err.start:err.start + 4]!r}...)"
        ) from None
    records: list[LabelRecord] = []
    seen: dict[str, int] = {}
    for line_no, header, body in _fasta_blocks(path, text):
        pid = header[1:].split()[0] if header[1:].strip() else ""
        shown = pid if len(pid) <= MAX_ID_LENGTH else pid[:20] + "..."
        where = f"{path}: record {shown or '?'} (line {line_no})"
        if not pid:
            raise InputError(f"{where}: empty id")
        if len(body) < 2:
            raise InputError(f"{where}: a record is 3 lines (>id, sequence, labels); this one is cut short")
        if len(body) > 2:
            raise InputError(
                f"{where}: a record is 3 lines (>id, sequence, labels); this one has {len(body) + 1} "
                "(a sequence or label string wrapped over several lines?)"
            )
        check_protein_id(pid, where)
        if pid in seen:
            raise InputError(f"{where}: duplicate id, first seen at line {seen[pid]}")
        seen[pid] = line_no
        records.append(LabelRecord(pid, *_checked_sequence_and_labels(where, body[0], body[1], unknown_residue)))
    return records


def _fasta_blocks(path: Path, text: str):
    """Yield (line number, header line, non-blank lines up to the next header) for every ``>`` header."""
    lines = [(n, ln.strip()) for n, ln in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)]
    lines = [(n, ln) for n, ln in lines if ln]
    if not lines:
        raise InputError(f"{path}: file is empty")
    if not lines[0][1].startswith(">"):
        raise InputError(f"{path}: line {lines[0][0]}: expected a '>id' header, got {lines[0][1][:30]!r}")
    headers = [k for k, (_, ln) in enumerate(lines) if ln.startswith(">")] + [len(lines)]
    for k, following in zip(headers, headers[1:]):
        yield lines[k][0], lines[k][1], [ln for _, ln in lines[k + 1 : following]]


def _checked_sequence_and_labels(where: str, sequence: str, labels: str, unknown_residue: str) -> tuple[str, str]:
    allowed = set(AMINO_ACIDS + "X")
    sequence = sequence.upper()
    bad = sorted(set(sequence) - allowed)
    if bad:
        if unknown_residue != "map_to_x" or any(not c.isalpha() for c in bad):
            raise InputError(f"{where}: unknown residue letter(s) {''.join(bad)!r} in the sequence")
        sequence = "".join(c if c in allowed else "X" for c in sequence)
    if len(sequence) != len(labels):
        raise InputError(f"{where}: sequence has {len(sequence)} residues but the label line has {len(labels)}")
    if set(labels) - {"0", "1"}:
        raise InputError(f"{where}: labels must be 0/1, found {''.join(sorted(set(labels) - {'0', '1'}))!r}")
    return sequence, labels
