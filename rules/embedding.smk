# Augmentation in the space where the base model decides: the graph_transformer arm's per-residue embeddings become a
# residue table (results/embedding/features/), and the feature-space pipeline runs on it unchanged: diffusion
# training, generation, critic and filter, balance and generation metrics, all under results/embedding/. The
# embedding_* arms then train a new head on that table (rules/common.smk, classifier_inputs).


rule embed_residues:
    input:
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
        models=f"results/classifier/{EMBEDDING_MODEL_ARM}/models",
        **tree_score_inputs(),
    output:
        residues="results/embedding/features/residues.parquet",
        standardisation="results/embedding/features/standardisation.json",
    log:
        "results/logs/embedding/embed_residues.log",
    benchmark:
        "results/benchmarks/embed_residues.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        seed=config["seed"],
        device=config["classifier"]["device"],
    script:
        "../workflow_scripts/embed_residues.py"


use rule train_diffusion as embedding_train_diffusion with:
    input:
        residues="results/embedding/features/residues.parquet",
        edges="results/features/edges.parquet",
    output:
        model="results/embedding/diffusion/model.pt",
        contexts="results/embedding/diffusion/contexts.parquet",
        history="results/embedding/diffusion/history.json",
    log:
        "results/logs/embedding/train_diffusion.log",
    benchmark:
        "results/benchmarks/embedding_train_diffusion.tsv"


use rule generate as embedding_generate with:
    input:
        model="results/embedding/diffusion/model.pt",
        contexts="results/embedding/diffusion/contexts.parquet",
        residues="results/embedding/features/residues.parquet",
    output:
        "results/embedding/generated/shard_{shard}.parquet",
    log:
        "results/logs/embedding/generate/shard_{shard}.log",
    benchmark:
        "results/benchmarks/embedding_generate_shard_{shard}.tsv"


use rule train_critic as embedding_train_critic with:
    input:
        "results/embedding/features/residues.parquet",
    output:
        "results/embedding/filtered/critic.pt",
    log:
        "results/logs/embedding/train_critic.log",
    benchmark:
        "results/benchmarks/embedding_train_critic.tsv"


use rule filter_shard as embedding_filter_shard with:
    input:
        candidates="results/embedding/generated/shard_{shard}.parquet",
        critic="results/embedding/filtered/critic.pt",
        residues="results/embedding/features/residues.parquet",
    output:
        kept="results/embedding/filtered/shard_{shard}.parquet",
        scores="results/embedding/filtered/scores_{shard}.parquet",
    log:
        "results/logs/embedding/filter/shard_{shard}.log",
    benchmark:
        "results/benchmarks/embedding_filter_shard_{shard}.tsv"


use rule balance as embedding_balance with:
    input:
        residues="results/embedding/features/residues.parquet",
        filtered=expand("results/embedding/filtered/shard_{shard}.parquet", shard=SHARDS),
    output:
        table="results/embedding/balanced/train.parquet",
        summary="results/embedding/balanced/summary.json",
    log:
        "results/logs/embedding/balance.log",
    benchmark:
        "results/benchmarks/embedding_balance.tsv"


use rule generation_quality as embedding_generation_quality with:
    input:
        generated=expand("results/embedding/generated/shard_{shard}.parquet", shard=SHARDS),
        scores=expand("results/embedding/filtered/scores_{shard}.parquet", shard=SHARDS),
        residues="results/embedding/features/residues.parquet",
        history="results/embedding/diffusion/history.json",
    output:
        json="results/embedding/quality/metrics.json",
        tsv="results/embedding/quality/metrics.tsv",
        pca="results/embedding/quality/pca.png",
        scores="results/embedding/quality/quality_scores.png",
        loss="results/embedding/quality/loss_curves.png",
    log:
        "results/logs/embedding/generation_quality.log",
    benchmark:
        "results/benchmarks/embedding_generation_quality.tsv"
