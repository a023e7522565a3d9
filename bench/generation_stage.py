"""Wall time of the whole generation stage (every shard, process start included) through Snakemake.

    python bench/generation_stage.py --configfile config/dna573.yaml [more config files] --gpus 1 [--json OUT.json]

First brings everything upstream of `generate` up to date (untimed), then times
`snakemake --forcerun generate --until generate --resources gpu=N`, so with N cards N shards run at once, each on its
own card (siteaug.runtime.device.gpu_slot). Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd


def snakemake(configfiles: list[str], cores: int, gpus: int, *extra: str) -> float:
    command = [sys.executable, "-m", "snakemake", "--configfile", *configfiles, "--cores", str(cores),
               "--resources", f"gpu={gpus}", *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", required=True)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--cores", type=int, default=16)
    parser.add_argument("--json", default="generation_stage.json")
    args = parser.parse_args()
    snakemake(args.configfile, args.cores, args.gpus, "--until", "train_diffusion")
    # Shards of an earlier run with another shard count would be counted below: remove them first.
    for stale in [*Path("results/generated").glob("shard_*.parquet"), *Path("results/benchmarks").glob("generate_shard_*.tsv")]:
        stale.unlink()
    wall = snakemake(args.configfile, args.cores, args.gpus, "--forcerun", "generate", "--until", "generate")
    shards = sorted(Path("results/benchmarks").glob("generate_shard_*.tsv"))
    rows = [{"shard": p.stem, "seconds": float(pd.read_csv(p, sep="\t")["s"].iloc[-1])} for p in shards]
    candidates = sum(len(pd.read_parquet(p, columns=["candidate_id"])) for p in sorted(Path("results/generated").glob("shard_*.parquet")))
    print(f"\ngeneration stage with {args.gpus} GPU(s): {wall:.1f} s wall for {candidates} candidates")
    for row in rows:
        print(f"  {row['shard']}: {row['seconds']:.1f} s")
        # The phase timings the generate rule logs (process start, load, first chunk, sampling, write).
        log = Path("results/logs/generate") / f"{row['shard'].removeprefix('generate_')}.log"
        row["phases"] = [m.group(1) for m in re.finditer(r"INFO \S+: (.+? s)$", log.read_text(), re.MULTILINE)]
        for phase in row["phases"]:
            print(f"    {phase}")
    Path(args.json).write_text(json.dumps({"gpus": args.gpus, "wall_seconds": wall, "candidates": candidates, "shards": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
