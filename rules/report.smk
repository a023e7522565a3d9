rule report:
    input:
        predictions=expand("results/classifier/{arm}/predictions.parquet", arm=ARMS),
        proteins="results/data/proteins.parquet",
        scores=expand("results/filtered/scores_{shard}.parquet", shard=SHARDS),
        balance="results/balanced/summary.json",
    output:
        html="results/report/report.html",
        tsv="results/report/metrics.tsv",
        json="results/report/metrics.json",
    params:
        arms=ARMS,
        threshold=config["filter"]["quality_threshold"],
        benchmarks="results/benchmarks",
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/report.py"
