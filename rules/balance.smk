rule balance:
    input:
        residues="results/features/residues.parquet",
        filtered=expand("results/filtered/shard_{shard}.parquet", shard=SHARDS),
    output:
        table="results/balanced/train.parquet",
        summary="results/balanced/summary.json",
    params:
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    log:
        "results/logs/balance.log",
    benchmark:
        "results/benchmarks/balance.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/balance.py"
