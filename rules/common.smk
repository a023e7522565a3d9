import re

# this checkout's: Snakemake puts the Snakefile's folder first on sys.path. Torch-free, so parsing stays fast.
from siteaug.arms.registry import (
    EMBEDDING_MODEL_ARM,
    EMBEDDING_TABLE,
    FEATURE_TABLE,
    RATIO_SWEEP,
    SHARED,
    SMOTE_FILTERED,
    TREE_GRID_ARM,
    UNFILTERED,
    arm_settings,
    lookup_arm,
    seed_fit_settings,
    seed_process_count,
    sweep_arm,
    workflow_arms,
)

SHARDS = list(range(config["generation"]["shards"]))
# The ratio sweep adds one diffusion arm per ratio (diffusion_ratio0.5, ...), each with its own balanced table.
SWEEP_ARMS = [sweep_arm(r) for r in config["classifier"]["ratio_sweep"]]
# siteaug.runtime.config_checks.check_config (called by the Snakefile) refuses a ratio above target_positive_ratio and two
# ratios that get one name. The embedding_* arms train heads on the embeddings of EMBEDDING_MODEL_ARM's model, so that
# arm runs (and is reported) whenever one of them does.
ARMS = workflow_arms(config["classifier"]["arms"], config["classifier"]["ratio_sweep"])
# Arms trained on a balanced table of their own, built by rule balance_variant.
VARIANTS = [a for a in ARMS if lookup_arm(a).variant]
# Whether the embedding-space augmentation pipeline (rules/embedding.smk: diffusion, generation, filter, balance) runs:
# an arm trains on the balanced embedding table.
EMBEDDING_AUGMENTATION = any(lookup_arm(a).table == EMBEDDING_TABLE and lookup_arm(a).balanced == SHARED for a in ARMS)
# Whether an arm reads the embedding table (embed_residues runs). EMBEDDING_MODEL_ARM's first seed is then fitted by
# embed_residues, and the arm's own job reads that fit (its folder) instead of fitting the seed again.
EMBEDDING_TABLE_USED = any(lookup_arm(a).table == EMBEDDING_TABLE for a in ARMS)
EMBEDDING_MODEL_FIT = out(f"classifier/{EMBEDDING_MODEL_ARM}/seed_{config['seed']}")
# Whether the tree_scores job runs: EMBEDDING_MODEL_ARM reads its out-of-fold scores as a node input. Its fits are the
# gbdt arm's grid-tuning fits (same rows, folds and seed), so that arm's job then reads the grid point chosen there
# instead of fitting the grid again: 42 of gbdt's 67 s on DNA-573 (bench/RESULTS.md, 2026-12-06, eighth session).
TREE_SCORES_RUN = EMBEDDING_MODEL_ARM in ARMS and bool(config["classifier"]["graph_transformer"]["tree_input"])
# Whether compile_graph_transformer runs: EMBEDDING_MODEL_ARM trains on a CUDA card with its step compiled. Its fits
# (embed_residues' first seed, the arm's other seeds) then read the compilation from torch's compile cache instead of
# compiling it each, about 35 s apiece (bench/RESULTS.md, "graph_transformer compiled"). classifier.device auto may
# mean a CPU, where nothing is compiled: only an explicit cuda warms up.
COMPILE_WARMUP = (
    EMBEDDING_MODEL_ARM in ARMS
    and str(config["classifier"]["device"]).split(":")[0] == "cuda"
    and bool(config["classifier"]["graph_transformer"]["compile"])
)
# Its output, which the jobs that fit the arm's seeds take as an input: they start once the cache holds their step.
COMPILED_STEP = out(f"classifier/{EMBEDDING_MODEL_ARM}_compiled.json")
# Its cores: the compiler's workers. features and tree_scores, which run beside it, leave them free.
COMPILE_THREADS = 2
if COMPILE_WARMUP:
    # torch's compile cache in the output folder, not the machine's /tmp: a cluster's jobs on other nodes find the
    # compilation too, and so do later runs into this folder. A cache the user chose stays theirs.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(out(".torch_compile_cache")))


def first_seed_fitted_apart(arm):
    """Whether embed_residues fits arm ``arm``'s first seed (EMBEDDING_MODEL_FIT), so that the arm's job does not."""
    return arm == EMBEDDING_MODEL_ARM and EMBEDDING_TABLE_USED


# Whether the feature-space generation stages run (train_diffusion, plan_generation, generate, filter_shard, balance,
# sample_quality): an arm trains on what they make, the shared balanced table (diffusion) or a balance_variant table of
# generated candidates (diffusion_unfiltered, the ratio sweep). Without one, no rule reads their outputs, so a run of
# e.g. none, smote and gbdt trains no diffusion model, and its report says that generation was not run.
GENERATION = any(
    lookup_arm(a).table == FEATURE_TABLE and lookup_arm(a).balanced in (SHARED, UNFILTERED, RATIO_SWEEP) for a in ARMS
)
# The quality filter's critic: for the filter of generated candidates, and for smote_filtered's SMOTE candidates.
CRITIC = GENERATION or any(lookup_arm(a).variant == SMOTE_FILTERED for a in ARMS)
ENV = "../envs/siteaug.yaml"
# Feature-group ablation settings, name ("sequence+structure") -> groups; empty when report.feature_ablation is off.
if config["report"]["feature_ablation"]:
    # this checkout's: Snakemake puts the Snakefile's folder first on sys.path
    from siteaug.evaluation.ablation import ablation_settings

    ABLATION = ablation_settings(config["report"]["feature_ablation"], config["features"]["groups"])
else:
    ABLATION = {}


wildcard_constraints:
    shard=r"\d+",
    arm="|".join(map(re.escape, ARMS)),
    variant="|".join(map(re.escape, VARIANTS)) or "(?!)",
    setting="|".join(map(re.escape, ABLATION)) or "(?!)",


# Every core of --cores; without --cores (a dry run, --lint, a cluster executor) the top-level threads. A cluster job's
# own Snakemake runs with `--cores all` (every core of its node): it keeps the count the job was submitted with, or its
# step asks SLURM for more CPUs than the job was given.
def every_core():
    submitting = workflow.is_main_process and workflow.local_exec
    cores = workflow.resource_settings.cores if submitting else None
    return cores or config["threads"]


def cores_beside_compile():
    """Every core but compile_graph_transformer's, when it runs: for the jobs it runs beside (features, tree_scores),
    which would otherwise wait for it to end."""
    return max(1, every_core() - COMPILE_THREADS) if COMPILE_WARMUP else every_core()


# features.threads caps the features rule (Snakemake lowers a larger cap to --cores).
def features_threads():
    return config["features"]["threads"] or cores_beside_compile()


# When several jobs are ready at once, those of the workflow's long chains start first, so the run does not wait for a
# chain at its end. The longest: tree scores, graph_transformer (its first seed and embeddings, then its other seeds),
# the embedding-space pipeline and the arm trained on its generated rows. Next: the feature-space generation chain
# (diffusion training, generation, critic, filter, balance) and the arms trained on its rows. The arms on real rows
# only (embedding_none and embedding_smote too) are one job each and fill the gaps. On DNA-573, once the embedding chain
# no longer waited for all of graph_transformer's seeds, the feature-space chain ended last: its generate job had
# waited behind embedding_none (bench/RESULTS.md, 2026-12-06, fourth session). Of those, an arm that trains on the CPU
# (gbdt) starts first: it is the longest (46-68 s on DNA-573) and holds half the cores, which come free at once only
# late; under MPS the GPU chains ended first, and the report waited 15 s for gbdt, started at 185 s of 258
# (bench/RESULTS.md, 2026-12-06, seventh session).
CRITICAL_PATH_PRIORITY = 10
GENERATION_CHAIN_PRIORITY = 5
CPU_ARM_PRIORITY = 1
GENERATED_ROWS = (SHARED, UNFILTERED, RATIO_SWEEP)  # the balanced tables that hold generated rows


def classifier_priority(wildcards):
    arm = lookup_arm(wildcards.arm)
    if arm.name == EMBEDDING_MODEL_ARM or (arm.table == EMBEDDING_TABLE and arm.balanced == SHARED):
        return CRITICAL_PATH_PRIORITY
    if arm.balanced in GENERATED_ROWS:
        return GENERATION_CHAIN_PRIORITY
    return 0 if arm.on_device else CPU_ARM_PRIORITY


def variant_priority(wildcards):
    return GENERATION_CHAIN_PRIORITY if lookup_arm(wildcards.variant).variant in GENERATED_ROWS else 0


# A train_classifier job holds a core for each process that trains its seeds side by side (classifier.seed_processes),
# counting only the seeds it fits: not EMBEDDING_MODEL_ARM's first one when embed_residues fits it.
def classifier_seed_processes(wildcards):
    classifier = config["classifier"]
    if first_seed_fitted_apart(wildcards.arm):
        classifier = {**classifier, "seeds": classifier["seeds"] - 1}
    return seed_process_count(wildcards.arm, classifier)


# Half of --cores (at least threads), for a job that gains from more cores but should not wait for every core to be
# free, as a job that asks for all of them does until every other job has ended.
def half_the_cores():
    return max(config["threads"], every_core() // 2)


# An arm that trains on the CPU whatever classifier.device says (gbdt) runs its grid fits side by side: half_the_cores.
def classifier_threads(wildcards):
    if not lookup_arm(wildcards.arm).on_device:
        return half_the_cores()
    return max(config["threads"], classifier_seed_processes(wildcards))


def label_file():
    if config["input"]["source"] == "demo":
        return out("demo/labels.fa")
    if not config["input"]["labels"]:
        raise ValueError("config key input.labels is required when input.source is 'files'")
    return config["input"]["labels"]


def structure_dir():
    if config["input"]["source"] == "demo":
        return out("demo/pdb")
    return config["input"]["structures"]


def prepare_inputs(wildcards):
    inputs = {"labels": label_file()}
    if structure_dir():
        inputs["structures"] = structure_dir()
    for key in ("external_test_labels", "external_test_structures"):
        if config["input"][key]:
            inputs[key] = config["input"][key]
    return inputs


# Where each arm's tables come from (siteaug.arms.registry.Arm says which it needs).
FEATURE_TABLES = {
    FEATURE_TABLE: out("features/residues.parquet"),
    EMBEDDING_TABLE: out("embedding/features/residues.parquet"),
}
SHARED_BALANCED_TABLES = {
    FEATURE_TABLE: out("balanced/train.parquet"),
    EMBEDDING_TABLE: out("embedding/balanced/train.parquet"),
}


def classifier_inputs(wildcards):
    inputs = arm_inputs(wildcards.arm)
    if first_seed_fitted_apart(wildcards.arm):
        inputs["first_seed"] = EMBEDDING_MODEL_FIT  # fitted by embed_residues; this job fits the other seeds
    if wildcards.arm == TREE_GRID_ARM and TREE_SCORES_RUN:
        inputs["tree_grid"] = out("features/tree_scores.json")  # the grid point, chosen on the tree_scores job's fits
    return inputs


def arm_inputs(name):
    """The tables arm ``name`` trains on."""
    arm = lookup_arm(name)
    inputs = {"residues": FEATURE_TABLES[arm.table]}
    if arm.balanced == SHARED:
        inputs["balanced"] = SHARED_BALANCED_TABLES[arm.table]
    elif arm.variant:
        inputs["balanced"] = out(f"balanced/{arm.name}/train.parquet")
    if arm.edges:
        inputs["edges"] = out("features/edges.parquet")
    if arm.name == EMBEDDING_MODEL_ARM:
        inputs.update(tree_score_inputs())
        if COMPILE_WARMUP:  # not a table
            inputs["compiled_step"] = COMPILED_STEP
    return inputs


def tree_score_inputs(wildcards=None):
    """The out-of-fold tree scores graph_transformer reads as a node feature, when classifier.graph_transformer.tree_input
    is on (its model and every embedding of it then need them)."""
    if config["classifier"]["graph_transformer"]["tree_input"]:
        return {"tree_scores": out("features/tree_scores.parquet")}
    return {}


def variant_inputs(wildcards):
    """The inputs of each kind of balance_variant table (workflow_scripts/balance_variant.py builds them)."""
    inputs = {"residues": out("features/residues.parquet")}
    kind = lookup_arm(wildcards.variant).variant
    if kind == UNFILTERED:
        inputs["generated"] = expand(out("generated/shard_{shard}.parquet"), shard=SHARDS)
        inputs["plan"] = out("generated/plan.parquet")
    elif kind == SMOTE_FILTERED:
        inputs["critic"] = out("filtered/critic.pt")
    elif kind == RATIO_SWEEP:
        inputs["filtered"] = expand(out("filtered/shard_{shard}.parquet"), shard=SHARDS)
    else:
        raise ValueError(f"arm {wildcards.variant}: no balance_variant inputs for kind {kind!r}")
    return inputs


def variant_settings(wildcards):
    """The config keys a balance_variant table of this kind reads beyond the ratio and seed: the quality filter's (and
    how many SMOTE candidates to score) for smote_filtered, none for the others."""
    if lookup_arm(wildcards.variant).variant != SMOTE_FILTERED:
        return {}
    return {
        "filter": {k: config["filter"][k] for k in ("quality_threshold", "knn_k", "near_copy_fraction", "device")},
        "sample_multiplier": config["generation"]["sample_multiplier"],
    }


# Extra report sections: title -> {"tables": [json/tsv/csv paths], "images": [png paths], "text": "..."}. Their files
# become inputs of the report rule.
GENERATION_NOT_RUN = (
    f"Not run: no arm of this run ({', '.join(ARMS)}) trains on generated rows (diffusion, diffusion_unfiltered and "
    "the ratio-sweep arms do), so no diffusion model was trained and no candidates were generated, filtered or added "
    "to a balanced table; there are no generation-quality metrics."
)
if GENERATION:
    REPORT_SECTIONS = {
        "Generation quality": {
            "text": "Synthetic candidates against real training positives (k-NN precision/recall, C2ST, DCR against "
            "held-back validation positives, per-feature Wasserstein, correlation distance, filter acceptance).",
            "tables": [out("sample_quality/metrics.json")],
            # The quality-score histogram is already in the report's own candidate-quality section.
            "images": [out("sample_quality/pca.png"), out("sample_quality/loss_curves.png")],
        }
    }
else:
    REPORT_SECTIONS = {
        "Generation quality": {
            "text": GENERATION_NOT_RUN,
        }
    }
if EMBEDDING_AUGMENTATION:
    REPORT_SECTIONS["Generation quality in embedding space"] = {
        "text": "The same metrics for the candidates of the embedding-space diffusion model (rows are the "
        "graph_transformer's per-residue embeddings, standardised with training-split statistics).",
        "tables": [out("embedding/sample_quality/metrics.json")],
        "images": [out("embedding/sample_quality/pca.png"), out("embedding/sample_quality/loss_curves.png")],
    }
if ABLATION:
    REPORT_SECTIONS["Feature-group ablation"] = {
        "text": "The none arm (real rows only) trained on feature tables rebuilt with only each setting's groups (neighbour "
        "means over that setting's own residue graph), same split, classifier and seeds. Pooled over residues, mean "
        "over seeds, bootstrap intervals over proteins; MCC and F1 at the threshold chosen on validation, so their "
        "validation values are optimistic. Δ: paired difference from the first setting.",
        "tables": [out("ablation/table.tsv")],
        "images": [out("ablation/metrics.png")],
    }
ABLATION_TARGETS = [out("ablation/metrics.tsv")] if ABLATION else []


def report_section_files():
    return [f for section in REPORT_SECTIONS.values() for key in ("tables", "images") for f in section.get(key, [])]


def stage_benchmarks(wildcards):
    """The benchmark file of every job this run's report depends on, for its time-per-stage and critical-path tables.
    Declared, not globbed, so the files of an arm or shard that an earlier run had and this one has not are not read."""
    # In the order of the stages (the order of a rule's inputs is the order its jobs enter the DAG, which breaks ties
    # when the scheduler picks among ready jobs): the generation stages' files where they run (GENERATION, CRITIC).
    files = [
        rules.prepare.benchmark,
        rules.features.benchmark,
        *([rules.train_diffusion.benchmark, rules.plan_generation.benchmark] if GENERATION else []),
        *(expand(rules.generate.benchmark, shard=SHARDS) if GENERATION else []),
        *([rules.train_critic.benchmark] if CRITIC else []),
        *(expand(rules.filter_shard.benchmark, shard=SHARDS) if GENERATION else []),
        *([rules.balance.benchmark] if GENERATION else []),
        *expand(rules.balance_variant.benchmark, variant=VARIANTS),
        *expand(rules.train_classifier.benchmark, arm=ARMS),
        *([rules.sample_quality.benchmark] if GENERATION else []),
        rules.evaluate.benchmark,
        rules.report_figures.benchmark,
    ]
    if config["input"]["source"] == "demo":
        files.append(rules.make_demo.benchmark)
    if TREE_SCORES_RUN:
        files.append(rules.tree_scores.benchmark)
    if COMPILE_WARMUP:
        files.append(rules.compile_graph_transformer.benchmark)
    if EMBEDDING_TABLE_USED:
        files.append(rules.embed_residues.benchmark)
    if EMBEDDING_AUGMENTATION:
        files += [
            rules.embedding_train_diffusion.benchmark,
            rules.embedding_plan_generation.benchmark,
            *expand(rules.embedding_generate.benchmark, shard=SHARDS),
            rules.embedding_train_critic.benchmark,
            *expand(rules.embedding_filter_shard.benchmark, shard=SHARDS),
            rules.embedding_balance.benchmark,
            rules.embedding_sample_quality.benchmark,
        ]
    if ABLATION:
        files += [
            *expand(rules.ablation_features.benchmark, setting=ABLATION),
            *expand(rules.ablation_classifier.benchmark, setting=ABLATION),
            rules.ablation_summary.benchmark,
        ]
    return files
