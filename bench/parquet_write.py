"""Write and read time of a generated-shard-like Parquet table under several writer settings.

    python bench/parquet_write.py [--rows 1000000] [--features 132] [--like SHARD.parquet] [--repeats 3] [--json OUT]

The table mimics what `generate` writes: `protein_id` (str, a few hundred proteins in blocks), `candidate_id` (int64)
and float32 `f_*` columns from a feature-major array, the layout generation.generate_candidates hands to pandas.
Values are standard normal, or with --like the float columns of a real generated shard tiled to --rows (LZ4 leaves most
real float columns at ~100 % of their size but shrinks constant ones, which changes its speed). Each setting is
written and read back (siteaug.runtime.io.read_parquet, as the filter stage does) `--repeats` times; medians are printed,
every time goes to the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from siteaug.runtime.io import atomic_path, read_parquet, write_parquet  # noqa: E402


def shard_table(rows: int, features: int, proteins: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    feature_major = rng.standard_normal((features, rows), dtype=np.float32)
    table = pd.DataFrame(feature_major.T, columns=[f"f_{i}" for i in range(features)], copy=False)
    counts = np.diff(np.linspace(0, rows, proteins + 1).astype(int))
    table.insert(0, "candidate_id", np.concatenate([np.arange(n) for n in counts]).astype(np.int64))
    table.insert(0, "protein_id", np.repeat([f"{i:04d}A" for i in range(proteins)], counts).astype(str))
    return table


def like_table(path: str, rows: int) -> pd.DataFrame:
    """A real shard's rows repeated to ``rows`` (repeats are 100s of KB apart, beyond LZ4's 64 KB window)."""
    real = read_parquet(path)
    floats = real.filter(like="f_").to_numpy().T  # feature-major, as the sampler hands it over
    take = np.arange(rows) % len(real)
    table = pd.DataFrame(np.ascontiguousarray(floats[:, take]).T, columns=real.filter(like="f_").columns, copy=False)
    table.insert(0, "candidate_id", np.arange(rows, dtype=np.int64))
    table.insert(0, "protein_id", real["protein_id"].to_numpy()[take].astype(str))
    return table


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)


def _raw(df: pd.DataFrame, path: Path, **options) -> None:
    """pq.write_table with `options` into a fresh file, nullable fields, dictionary encoding on non-float columns."""
    table = _arrow(df)
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    pq.write_table(table, path, use_dictionary=dictionary, **options)


def _previous_writer(df: pd.DataFrame, path: Path) -> None:
    """siteaug.runtime.io.write_parquet as of commit 34653cd: LZ4, dictionary on non-float columns, nullable fields, all
    statistics, written into the file that atomic_path reserved (so Arrow truncates an existing file)."""
    table = _arrow(df)
    dictionary = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="lz4", use_dictionary=dictionary)


def _per_column(df: pd.DataFrame, float_codec: str) -> dict[str, str]:
    return {c: (float_codec if c.startswith("f_") else "lz4") for c in df.columns}


def settings(df: pd.DataFrame) -> dict:
    floats = [c for c in df.columns if c.startswith("f_")]
    return {
        "previous write_parquet (34653cd)": lambda p: _previous_writer(df, p),
        "write_parquet": lambda p: write_parquet(df, p),
        "write_parquet(compress_floats=False)": lambda p: write_parquet(df, p, compress_floats=False),
        "lz4 (explicit, same as current)": lambda p: _raw(df, p, compression="lz4"),
        "floats uncompressed, ids lz4": lambda p: _raw(df, p, compression=_per_column(df, "none")),
        "all uncompressed": lambda p: _raw(df, p, compression="none"),
        "zstd level 1": lambda p: _raw(df, p, compression="zstd", compression_level=1),
        "lz4, no statistics": lambda p: _raw(df, p, compression="lz4", write_statistics=False),
        "lz4, no float statistics": lambda p: _raw(
            df, p, compression="lz4", write_statistics=[c for c in df.columns if c not in floats]),
        "floats uncompressed, no float statistics": lambda p: _raw(
            df, p, compression=_per_column(df, "none"), write_statistics=[c for c in df.columns if c not in floats]),
        "lz4, row groups of 128 Ki rows": lambda p: _raw(df, p, compression="lz4", row_group_size=128 * 1024),
        "lz4, 8 MiB data pages": lambda p: _raw(df, p, compression="lz4", data_page_size=8 << 20),
        "lz4, write_batch_size 65536": lambda p: _raw(df, p, compression="lz4", write_batch_size=65536),
        "byte_stream_split floats + zstd 1": lambda p: _raw(
            df, p, compression="zstd", compression_level=1, use_byte_stream_split=floats),
    }


def measure(write, path: Path, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        path.unlink(missing_ok=True)
        start = time.perf_counter()
        write(path)
        times.append(time.perf_counter() - start)
    reads = []
    for _ in range(repeats):
        start = time.perf_counter()
        back = read_parquet(path)
        reads.append(time.perf_counter() - start)
        del back
    return {"write_s": statistics.median(times), "write_all_s": times, "read_s": statistics.median(reads),
            "read_all_s": reads, "mb": path.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=132)
    parser.add_argument("--like", help="a generated shard whose float columns to tile instead of normal noise")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default="/tmp")
    parser.add_argument("--only", nargs="*", help="substrings of the setting names to run")
    parser.add_argument("--json")
    args = parser.parse_args()
    df = like_table(args.like, args.rows) if args.like else shard_table(args.rows, args.features)
    start = time.perf_counter()
    _arrow(df)
    print(f"{args.rows} rows x {df.shape[1]} columns, {os.cpu_count()} CPUs, pyarrow {pa.__version__}; "
          f"Table.from_pandas: {time.perf_counter() - start:.2f} s")
    path = Path(args.dir) / f"parquet_write_bench.{os.getpid()}.parquet"
    results = {}
    try:
        for name, write in settings(df).items():
            if args.only and not any(s in name for s in args.only):
                continue
            results[name] = measure(write, path, args.repeats)
            r = results[name]
            print(f"{name:45s} write {r['write_s']:6.2f} s  read {r['read_s']:5.2f} s  {r['mb']:7.1f} MB", flush=True)
    finally:
        path.unlink(missing_ok=True)
    if args.json:
        summary = {"rows": args.rows, "features": args.features, "like": args.like, "results": results}
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
