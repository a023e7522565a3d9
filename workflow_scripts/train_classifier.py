import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from contextlib import nullcontext
from pathlib import Path

from siteaug.arms.registry import ARM_INPUTS, lookup_arm
from siteaug.arms.seed_processes import SeedProcesses
from siteaug.runtime.workflow import compile_threads, numbered_bars, rounded, rule_logging

with rule_logging(snakemake) as log:
    p, i, arm = snakemake.params, snakemake.input, snakemake.wildcards.arm
    if "compiled_step" in i.keys():
        compile_threads(1)  # the cache holds the step: no worker pool; the seed processes inherit it
    # The arm's input files; its seed processes, if any, read the same files.
    inputs = {key: i.get(key) for key in ARM_INPUTS}
    seeds = [p.seed + k for k in range(p.settings["seeds"])]
    # The first seed of the embedding model arm, when embed_residues fitted it for the embeddings.
    fitted = {p.seed: i.first_seed} if "first_seed" in i.keys() else {}
    to_fit = [seed for seed in seeds if seed not in fitted]
    threads = max(1, snakemake.threads // p.seed_processes)
    # The seeds' processes start first, so that their start overlaps this process's imports and reading.
    side_by_side = p.seed_processes > 1 and len(to_fit) > 1
    started = SeedProcesses.from_files(arm, p.settings, p.ratio, p.settings["device"], inputs, to_fit, p.seed_processes,
                                       threads) if side_by_side else nullcontext()
    with started as running:
        from threadpoolctl import threadpool_limits

        from siteaug.arms.protocol import read_arm_inputs, train_arm
        from siteaug.arms.tree_scores import tree_grid_point
        from siteaug.runtime.io import write_json, write_parquet

        with threadpool_limits(snakemake.threads):  # scikit-learn's OpenMP threads too, imported just above
            # With every seed in a process, this job only scores: the training tables (balanced rows: up to 0.65 GB on
            # DNA-573; edges) are read by the processes alone.
            residues, balanced, edges = read_arm_inputs(**({**inputs, "balanced": None, "edges": None} if running else inputs))
            # gbdt's grid point, when the tree_scores job made the arm's tuning fits (rules/common.smk: TREE_SCORES_RUN).
            tuned = {"params": tree_grid_point(i.tree_grid, p.settings["gbdt"], seeds[0])} if "tree_grid" in i.keys() else None
            # One bar per network fitted here: one per seed (graph_transformer: members per seed).
            members = p.settings["graph_transformer"]["members"] if "graph_transformer" in p.settings else 1
            predictions, models, summary = train_arm(
                arm, residues, p.settings, p.ratio, seeds, balanced=balanced, edges=edges, device=p.settings["device"],
                seed_processes=p.seed_processes, threads=threads, inputs=inputs,
                progress=numbered_bars(f"train_classifier {arm}", len(to_fit) * members), fitted=fitted,
                tuned=tuned, started=running,
            )
    suffix = lookup_arm(arm).model_suffix
    for seed, model, info in zip(seeds, models, summary):
        log.info("arm %s seed %d: %s", arm, seed, rounded(info))
        model.save(Path(snakemake.output.models) / f"seed_{seed}{suffix}")
    write_json({"arm": arm, "ratio": p.ratio, "seeds": summary}, snakemake.output.summary)
    write_parquet(predictions, snakemake.output.predictions)
