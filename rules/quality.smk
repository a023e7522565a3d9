rule generation_quality:
    input:
        generated=expand("results/generated/shard_{shard}.parquet", shard=SHARDS),
        scores=expand("results/filtered/scores_{shard}.parquet", shard=SHARDS),
        residues="results/features/residues.parquet",
        history="results/diffusion/history.json",
    output:
        json="results/quality/metrics.json",
        tsv="results/quality/metrics.tsv",
        pca="results/quality/pca.png",
        scores="results/quality/quality_scores.png",
        loss="results/quality/loss_curves.png",
    log:
        "results/logs/generation_quality.log",
    benchmark:
        "results/benchmarks/generation_quality.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        quality=config["quality"],
        threshold=config["filter"]["quality_threshold"],
        sampler=config["generation"]["sampler"],
        sampler_steps=config["generation"]["sampler_steps"],
        seed=config["seed"],
    message:
        "Generation quality (k-NN, C2ST, distances; minutes on a CPU); progress: tail -f {log}"
    script:
        "../workflow_scripts/generation_quality.py"
