# Augmentation in the space where the base model decides: the graph_transformer arm's per-residue embeddings become a
# residue table (embedding/features/ in the output folder), and the feature-space pipeline runs on it unchanged: diffusion
# training, generation, critic and filter, balance and generation metrics, all under embedding/. The
# embedding_* arms then train a new head on that table (rules/common.smk, classifier_inputs).


# The graph_transformer arm's first seed (the config's seed), fitted in this job rather than in the arm's, then every
# residue embedded by it. The embedding-space chain thus starts while the arm's own job fits the other seeds (it reads
# this fit and scores all seeds): on DNA-573 the arm's job had stood on the critical path for 108 s, and a job of its own
# for the embedding alone would pay its imports again (torch-geometric: 10 s on the GPU machine; bench/RESULTS.md).
rule embed_residues:
    input:
        **arm_inputs(EMBEDDING_MODEL_ARM),
    output:
        model=directory(EMBEDDING_MODEL_FIT),
        residues=out("embedding/features/residues.parquet"),
        standardisation=out("embedding/features/standardisation.json"),
    log:
        out("logs/embedding/embed_residues.log"),
    benchmark:
        out("benchmarks/embed_residues.tsv")
    priority: CRITICAL_PATH_PRIORITY
    conda:
        ENV
    threads: config["threads"]
    params:
        # The keys of the classifier section that the arm's fit of one seed reads: the same fit as in its own job.
        settings=seed_fit_settings(EMBEDDING_MODEL_ARM, config["classifier"]),
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        seed=config["seed"],
    message:
        f"Fitting the first seed of arm {EMBEDDING_MODEL_ARM} and embedding every residue; progress: tail -f {{log}}"
    script:
        "../workflow_scripts/embed_residues.py"


use rule train_diffusion as embedding_train_diffusion with:
    input:
        residues=out("embedding/features/residues.parquet"),
        standardisation=out("embedding/features/standardisation.json"),
        edges=out("features/edges.parquet"),
    output:
        model=out("embedding/diffusion/model.pt"),
        contexts=out("embedding/diffusion/contexts.parquet"),
        history=out("embedding/diffusion/history.json"),
    log:
        out("logs/embedding/train_diffusion.log"),
    benchmark:
        out("benchmarks/embedding_train_diffusion.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule plan_generation as embedding_plan_generation with:
    input:
        out("embedding/features/residues.parquet"),
    output:
        out("embedding/generated/plan.parquet"),
    log:
        out("logs/embedding/plan_generation.log"),
    benchmark:
        out("benchmarks/embedding_plan_generation.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule generate as embedding_generate with:
    input:
        model=out("embedding/diffusion/model.pt"),
        contexts=out("embedding/diffusion/contexts.parquet"),
        plan=out("embedding/generated/plan.parquet"),
    output:
        out("embedding/generated/shard_{shard}.parquet"),
    log:
        out("logs/embedding/generate/shard_{shard}.log"),
    benchmark:
        out("benchmarks/embedding_generate_shard_{shard}.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule train_critic as embedding_train_critic with:
    input:
        out("embedding/features/residues.parquet"),
    output:
        out("embedding/filtered/critic.pt"),
    log:
        out("logs/embedding/train_critic.log"),
    benchmark:
        out("benchmarks/embedding_train_critic.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule filter_shard as embedding_filter_shard with:
    input:
        candidates=out("embedding/generated/shard_{shard}.parquet"),
        critic=out("embedding/filtered/critic.pt"),
        residues=out("embedding/features/residues.parquet"),
        plan=out("embedding/generated/plan.parquet"),
    output:
        kept=out("embedding/filtered/shard_{shard}.parquet"),
        scores=out("embedding/filtered/scores_{shard}.parquet"),
    log:
        out("logs/embedding/filter/shard_{shard}.log"),
    benchmark:
        out("benchmarks/embedding_filter_shard_{shard}.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule balance as embedding_balance with:
    input:
        residues=out("embedding/features/residues.parquet"),
        filtered=expand(out("embedding/filtered/shard_{shard}.parquet"), shard=SHARDS),
    output:
        table=out("embedding/balanced/train.parquet"),
        summary=out("embedding/balanced/summary.json"),
    log:
        out("logs/embedding/balance.log"),
    benchmark:
        out("benchmarks/embedding_balance.tsv")
    priority: CRITICAL_PATH_PRIORITY


use rule sample_quality as embedding_sample_quality with:
    input:
        generated=expand(out("embedding/generated/shard_{shard}.parquet"), shard=SHARDS),
        scores=expand(out("embedding/filtered/scores_{shard}.parquet"), shard=SHARDS),
        residues=out("embedding/features/residues.parquet"),
        history=out("embedding/diffusion/history.json"),
    output:
        json=report(
            out("embedding/sample_quality/metrics.json"),
            caption="../report/quality_metrics.rst",
            category="Generation quality in embedding space",
            labels={"file": "metrics.json"},
        ),
        tsv=report(
            out("embedding/sample_quality/metrics.tsv"),
            caption="../report/quality_metrics.rst",
            category="Generation quality in embedding space",
            labels={"file": "metrics.tsv"},
        ),
        pca=report(
            out("embedding/sample_quality/pca.png"),
            caption="../report/quality_pca.rst",
            category="Generation quality in embedding space",
            labels={"figure": "PCA of real and synthetic rows"},
        ),
        scores=report(
            out("embedding/sample_quality/quality_scores.png"),
            caption="../report/quality_scores.rst",
            category="Generation quality in embedding space",
            labels={"figure": "candidate quality"},
        ),
        loss=report(
            out("embedding/sample_quality/loss_curves.png"),
            caption="../report/quality_loss_curves.rst",
            category="Generation quality in embedding space",
            labels={"figure": "diffusion loss curves"},
        ),
    log:
        out("logs/embedding/sample_quality.log"),
    benchmark:
        out("benchmarks/embedding_sample_quality.tsv")
