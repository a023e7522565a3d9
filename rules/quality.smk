rule generation_quality:
    input:
        generated=expand(out("generated/shard_{shard}.parquet"), shard=SHARDS),
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS),
        residues=out("features/residues.parquet"),
        history=out("diffusion/history.json"),
    output:
        json=out("quality/metrics.json"),
        tsv=out("quality/metrics.tsv"),
        pca=out("quality/pca.png"),
        scores=out("quality/quality_scores.png"),
        loss=out("quality/loss_curves.png"),
    params:
        quality=config["quality"],
        threshold=config["filter"]["quality_threshold"],
        sampler=config["generation"]["sampler"],
        sampler_steps=config["generation"]["sampler_steps"],
        seed=config["seed"],
    threads: config["threads"]
    log:
        out("logs/generation_quality.log"),
    message:
        "Generation quality (k-NN, C2ST, distances; minutes on a CPU); progress: tail -f {log}"
    benchmark:
        out("benchmarks/generation_quality.tsv")
    conda:
        ENV
    script:
        "../workflow_scripts/generation_quality.py"
