"""Per-job share of the card from bench/gpu_trace.sh's files: for each rule script (a seed process counts for its
job), the seconds it had a compute context on the card, the sum of its SM shares (GPU-seconds at 100 %), and how many
other processes held the card beside it on average. Prints a table, longest GPU time first; writes JSON with --json.

    python3 bench/gpu_trace.py TRACE_FOLDER LOGS_FOLDER [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path


def job_of_pid(ps_text: str, logs: Path) -> dict[int, str]:
    """pid -> job: each rule job's log names its pid ("rule X started N s after its process (pid P)"); a seed process
    belongs to its parent's job (its ppid, from the ps snapshots)."""
    jobs = {}
    for log in logs.rglob("*.log"):
        found = re.search(r"after its process \(pid (\d+)\)", log.read_text(errors="replace"))
        if found:
            jobs[int(found.group(1))] = str(log.relative_to(logs).with_suffix(""))
    for line in ps_text.splitlines():
        if line.startswith("@") or "seed_processes" not in line:
            continue
        pid, ppid, _ = line.split(None, 2)
        jobs.setdefault(int(pid), f"{jobs.get(int(ppid), '?')} (seed process)")
    return jobs


def read_pmon(text: str) -> list[tuple[str, int, float]]:
    """(time, pid, SM %) per sample of a process with a context on the card ('-' counts as 0)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        if len(fields) < 5 or fields[2] == "-":
            continue
        time, pid, sm = fields[0], int(fields[2]), fields[4]
        rows.append((time, pid, 0.0 if sm == "-" else float(sm)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("logs", type=Path, help="the run's logs/ folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    jobs = job_of_pid((args.folder / "ps.txt").read_text(), args.logs)
    samples = read_pmon((args.folder / "pmon.txt").read_text())
    per_time = defaultdict(list)
    for time, pid, sm in samples:
        per_time[time].append((pid, sm))
    table = defaultdict(lambda: {"seconds": 0, "gpu_seconds": 0.0, "others": 0, "first": None, "last": None})
    busy = {time: sum(sm for _, sm in rows) for time, rows in per_time.items()}
    for time, rows in sorted(per_time.items()):
        for pid, sm in rows:
            row = table[jobs.get(pid, f"pid {pid}")]
            row["seconds"] += 1
            row["gpu_seconds"] += sm / 100
            row["others"] += len(rows) - 1
            row["first"] = row["first"] or time
            row["last"] = time
    print(f"{'job':<48} {'first':>8} {'last':>8} {'s on card':>9} {'GPU-s':>7} {'others':>6}")
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]["gpu_seconds"]):
        print(f"{name:<48} {row['first']:>8} {row['last']:>8} {row['seconds']:>9} {row['gpu_seconds']:>7.1f} "
              f"{row['others'] / max(row['seconds'], 1):>6.1f}")
    total = sum(busy.values()) / 100
    print(f"\nsamples {len(per_time)} s; SM share summed over processes: {total:.1f} GPU-s; seconds with the summed share "
          f"≥ 90 %: {sum(v >= 90 for v in busy.values())}")
    if args.json:
        args.json.write_text(json.dumps({"jobs": table, "busy": busy}, indent=1))


if __name__ == "__main__":
    main()
