rule sample_quality:
    input:
        generated=expand(out("generated/shard_{shard}.parquet"), shard=SHARDS),
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS),
        residues=out("features/residues.parquet"),
        history=out("diffusion/history.json"),
    output:
        json=report(
            out("sample_quality/metrics.json"),
            caption="../report/quality_metrics.rst",
            category="Generation quality",
            labels={"file": "metrics.json"},
        ),
        tsv=report(
            out("sample_quality/metrics.tsv"),
            caption="../report/quality_metrics.rst",
            category="Generation quality",
            labels={"file": "metrics.tsv"},
        ),
        pca=report(
            out("sample_quality/pca.png"),
            caption="../report/quality_pca.rst",
            category="Generation quality",
            labels={"figure": "PCA of real and synthetic rows"},
        ),
        scores=report(
            out("sample_quality/quality_scores.png"),
            caption="../report/quality_scores.rst",
            category="Generation quality",
            labels={"figure": "candidate quality"},
        ),
        loss=report(
            out("sample_quality/loss_curves.png"),
            caption="../report/quality_loss_curves.rst",
            category="Generation quality",
            labels={"figure": "diffusion loss curves"},
        ),
    log:
        out("logs/sample_quality.log"),
    benchmark:
        out("benchmarks/sample_quality.tsv")
    conda:
        ENV
    threads: config["threads"]
    params:
        quality=lookup(within=config, dpath="quality"),
        threshold=config["filter"]["quality_threshold"],
        sampler=config["generation"]["sampler"],
        sampler_steps=config["generation"]["sampler_steps"],
        seed=config["seed"],
    message:
        "Sample quality of the generated candidates (k-NN, C2ST, distances; minutes on a CPU); progress: tail -f {log}"
    script:
        "../workflow_scripts/sample_quality.py"
