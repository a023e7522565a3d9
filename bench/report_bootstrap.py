"""Time of the report's bootstrap statistics on a synthetic DNA-573-sized test set, before and after vectorising.

    python bench/report_bootstrap.py [--before COMMIT] [--residues 19400] [--proteins 86] [--arms 8] [--seeds 3]
                                     [--resamples 1000] [--repeats 3] [--json OUT]

"before" is siteaug/statistics.py as of --before (read with `git show`, default 2acf429, the last commit with the
per-resample cumulative sum and the per-protein scikit-learn loop); "after" is this checkout's. Both run what
comparison.evaluate runs per test set: compare_arms for the pooled and the per-protein aggregation over every arm. The
two must agree (largest difference printed); "report, end to end" also times the three report jobs (evaluation, figures, page)
on the same predictions. Medians of --repeats runs are printed; every time goes to the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import siteaug.evaluation.statistics as after  # noqa: E402
from siteaug.evaluation.comparison import AGGREGATIONS, compare, write_evaluation  # noqa: E402
from siteaug.evaluation.figures import report_figures, save_png  # noqa: E402
from siteaug.evaluation.report import report_page  # noqa: E402


def module_at(commit: str) -> types.ModuleType:
    """siteaug/statistics.py (its path before the stage folders) as of ``commit``, as a module whose relative import
    (``from .io import InputError``) resolves to this checkout's siteaug.runtime.io."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:siteaug/statistics.py"], check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("siteaug.runtime.statistics_before")
    module.__package__ = "siteaug.runtime"
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{commit}:siteaug/statistics.py", "exec"), module.__dict__)
    return module


def report_end_to_end(predictions: dict[str, pd.DataFrame], out_dir: str, resamples: int) -> None:
    """What the rules evaluate, report_figures and report do, one after the other."""
    out = Path(out_dir)
    evaluation = compare(predictions, None, resamples, 0.95, 0)
    write_evaluation(evaluation, out / "metrics.tsv", out / "differences.tsv", out / "metrics.json")
    figures = report_figures(predictions, None, evaluation)
    for name, fig in figures.items():
        save_png(fig, out / name)
    (out / "report.html").write_text(report_page(evaluation, {name: out / name for name in figures}))


def synthetic_arms(residues: int, proteins: int, arms: int, seeds: int, seed: int = 0) -> dict[str, after.ArmScores]:
    """Arms sharing one test set: proteins of uneven size, ~7 % positives, scores rounded to 4 decimals (ties)."""
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(residues - proteins, np.full(proteins, 1 / proteins)) + 1
    protein = np.repeat(np.arange(proteins), sizes)
    labels = (rng.random(residues) < 0.07).astype(np.int64)
    out = {}
    for a in range(arms):
        logits = (0.5 + 0.2 * a) * (2 * labels - 1) + rng.normal(0, 1, (seeds, residues))
        out[f"arm{a}"] = after.ArmScores(labels, protein, np.round(1 / (1 + np.exp(-logits)), 4), np.full(seeds, 0.5))
    return out


def statistics_run(module, arms: dict, resamples: int) -> dict:
    scores = {name: module.ArmScores(a.labels, a.protein, a.scores, a.thresholds) for name, a in arms.items()}
    return {aggregation: module.compare_arms(scores, aggregation, resamples, 0) for aggregation in AGGREGATIONS}


def largest_difference(a: dict, b: dict) -> float:
    worst = 0.0
    for aggregation in AGGREGATIONS:
        for part in ("point", "samples"):
            for arm, metrics in getattr(a[aggregation], part).items():
                for metric, values in metrics.items():
                    other = getattr(b[aggregation], part)[arm][metric]
                    if not np.array_equal(np.isnan(values), np.isnan(other)):
                        return float("inf")
                    worst = max(worst, float(np.nanmax(np.abs(values - other), initial=0.0)))
    return worst


def predictions_frame(arms: dict) -> dict[str, pd.DataFrame]:
    """The arms as report inputs (PREDICTION_COLUMNS, one block per seed)."""
    out = {}
    for name, arm in arms.items():
        seeds = len(arm.thresholds)
        n = len(arm.labels)
        out[name] = pd.DataFrame({
            "protein_id": np.tile(np.char.add("P", arm.protein.astype(str)), seeds), "position": np.tile(np.arange(n), seeds),
            "label": np.tile(arm.labels, seeds), "seed": np.repeat(np.arange(seeds), n), "score": arm.scores.ravel(),
            "threshold": np.repeat(arm.thresholds, n), "split": "test"})
    return out


def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="2acf429")
    parser.add_argument("--residues", type=int, default=19_400)
    parser.add_argument("--proteins", type=int, default=86)
    parser.add_argument("--arms", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    arms = synthetic_arms(args.residues, args.proteins, args.arms, args.seeds)
    before = module_at(args.before)
    before_times, before_result = timed(lambda: statistics_run(before, arms, args.resamples), args.repeats)
    after_times, after_result = timed(lambda: statistics_run(after, arms, args.resamples), args.repeats)
    predictions = predictions_frame(arms)
    with tempfile.TemporaryDirectory() as out_dir:
        report_times, _ = timed(lambda: report_end_to_end(predictions, out_dir, args.resamples), args.repeats)
    rows = {f"statistics before ({args.before})": before_times, "statistics after": after_times,
            "report, end to end (after)": report_times}
    difference = largest_difference(before_result, after_result)
    print(f"{args.residues} test residues, {args.proteins} proteins, {args.arms} arms x {args.seeds} seeds, "
          f"{args.resamples} resamples, pooled + per-protein; {os.cpu_count()} CPUs")
    print("| what | median s | runs |\n|---|---|---|")
    for name, times in rows.items():
        print(f"| {name} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} |")
    print(f"speed-up of the statistics: {statistics.median(before_times) / statistics.median(after_times):.1f}x; "
          f"largest |before - after| over every point and resample value: {difference:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "problem": {k: getattr(args, k) for k in ("residues", "proteins", "arms", "seeds", "resamples")},
            "before_commit": args.before, "cpus": os.cpu_count(), "seconds": rows, "largest_difference": difference,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
