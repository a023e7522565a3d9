import re

SHARDS = list(range(config["generation"]["shards"]))
# The ratio sweep adds one diffusion arm per ratio (diffusion_ratio0.5, ...), each with its own balanced table.
SWEEP_ARMS = [f"diffusion_ratio{r:g}" for r in config["classifier"]["ratio_sweep"]]
# siteaug.config_checks.check_config (called by the Snakefile) refuses a ratio above target_positive_ratio and two
# ratios that get one name.
ARMS = config["classifier"]["arms"] + [a for a in SWEEP_ARMS if a not in config["classifier"]["arms"]]
# The embedding_* arms train heads on the embeddings of the graph_transformer arm's model, so that arm runs (and is
# reported) whenever one of them does.
EMBEDDING_MODEL_ARM = "graph_transformer"
EMBEDDING_ARMS = [a for a in ARMS if a.startswith("embedding_")]
if EMBEDDING_ARMS and EMBEDDING_MODEL_ARM not in ARMS:
    ARMS.append(EMBEDDING_MODEL_ARM)
# Arms trained on a balanced table of their own, built by rule balance_variant.
VARIANTS = [a for a in ARMS if a in ("diffusion_unfiltered", "smote_filtered") or a in SWEEP_ARMS]
ENV = "../envs/siteaug.yaml"
# Feature-group ablation settings, name ("sequence+structure") -> groups; empty when report.feature_ablation is off.
if config["report"]["feature_ablation"]:
    from siteaug.ablation import ablation_settings  # this checkout's: Snakemake puts the Snakefile's folder first on sys.path

    ABLATION = ablation_settings(config["report"]["feature_ablation"], config["features"]["groups"])
else:
    ABLATION = {}


wildcard_constraints:
    shard=r"\d+",
    arm="|".join(map(re.escape, ARMS)),
    variant="|".join(map(re.escape, VARIANTS)) or "(?!)",
    setting="|".join(map(re.escape, ABLATION)) or "(?!)",


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


def classifier_inputs(wildcards):
    inputs = {"residues": out("features/residues.parquet")}
    if wildcards.arm == "diffusion":
        inputs["balanced"] = out("balanced/train.parquet")
    elif wildcards.arm in VARIANTS:
        inputs["balanced"] = out(f"balanced/{wildcards.arm}/train.parquet")
    elif wildcards.arm in ("gnn", "graph_transformer"):
        inputs["edges"] = out("features/edges.parquet")
    elif wildcards.arm in EMBEDDING_ARMS:
        inputs["residues"] = out("embedding/features/residues.parquet")
        if wildcards.arm == "embedding_diffusion":
            inputs["balanced"] = out("embedding/balanced/train.parquet")
    return inputs


def variant_inputs(wildcards):
    inputs = {"residues": out("features/residues.parquet")}
    if wildcards.variant == "diffusion_unfiltered":
        inputs["generated"] = expand(out("generated/shard_{shard}.parquet"), shard=SHARDS)
    elif wildcards.variant == "smote_filtered":
        inputs["critic"] = out("filtered/critic.pt")
    else:
        inputs["filtered"] = expand(out("filtered/shard_{shard}.parquet"), shard=SHARDS)
    return inputs


# Extra report sections: title -> {"tables": [json/tsv/csv paths], "images": [png paths], "text": "..."}. Their files
# become inputs of the report rule.
REPORT_SECTIONS = {
    "Generation quality": {
        "text": "Synthetic candidates against real training positives (k-NN precision/recall, C2ST, DCR against "
        "held-back validation positives, per-feature Wasserstein, correlation distance, filter acceptance).",
        "tables": [out("quality/metrics.json")],
        # The quality-score histogram is already in the report's own candidate-quality section.
        "images": [out("quality/pca.png"), out("quality/loss_curves.png")],
    }
}
if "embedding_diffusion" in ARMS:
    REPORT_SECTIONS["Generation quality in embedding space"] = {
        "text": "The same metrics for the candidates of the embedding-space diffusion model (rows are the "
        "graph_transformer's per-residue embeddings, standardised with training-split statistics).",
        "tables": [out("embedding/quality/metrics.json")],
        "images": [out("embedding/quality/pca.png"), out("embedding/quality/loss_curves.png")],
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
