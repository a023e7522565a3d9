rule balance:
    input:
        residues="results/features/residues.parquet",
        filtered=expand("results/filtered/shard_{shard}.parquet", shard=SHARDS),
    output:
        table="results/balanced/train.parquet",
        summary="results/balanced/summary.json",
    log:
        "results/logs/balance.log",
    benchmark:
        "results/benchmarks/balance.tsv"
    conda:
        ENV
    params:
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    script:
        "../workflow_scripts/balance.py"


rule balance_variant:
    input:
        unpack(variant_inputs),
    output:
        table="results/balanced/{variant}/train.parquet",
        summary="results/balanced/{variant}/summary.json",
    log:
        "results/logs/balance/{variant}.log",
    benchmark:
        "results/benchmarks/balance_{variant}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
        filter=config["filter"],
        sample_multiplier=config["generation"]["sample_multiplier"],
        gpu=config["gpu"],
    script:
        "../workflow_scripts/balance_variant.py"
