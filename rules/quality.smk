rule generation_quality:
    input:
        generated=expand(out("generated/shard_{shard}.parquet"), shard=SHARDS),
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS),
        residues=out("features/residues.parquet"),
        history=out("diffusion/history.json"),
    output:
        json=report(
            out("quality/metrics.json"),
            caption="../report/quality_metrics.rst",
            category="Generation quality",
            labels={"file": "metrics.json"},
        ),
        tsv=report(
            out("quality/metrics.tsv"),
            caption="../report/quality_metrics.rst",
            category="Generation quality",
            labels={"file": "metrics.tsv"},
        ),
        pca=report(
            out("quality/pca.png"),
            caption="../report/quality_pca.rst",
            category="Generation quality",
            labels={"figure": "PCA of real and synthetic rows"},
        ),
        scores=report(
            out("quality/quality_scores.png"),
            caption="../report/quality_scores.rst",
            category="Generation quality",
            labels={"figure": "candidate quality"},
        ),
        loss=report(
            out("quality/loss_curves.png"),
            caption="../report/quality_loss_curves.rst",
            category="Generation quality",
            labels={"figure": "diffusion loss curves"},
        ),
    log:
        out("logs/generation_quality.log"),
    benchmark:
        out("benchmarks/generation_quality.tsv")
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
