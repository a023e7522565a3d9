rule balance:
    input:
        residues=out("features/residues.parquet"),
        filtered=expand(out("filtered/shard_{shard}.parquet"), shard=SHARDS),
    output:
        table=out("balanced/train.parquet"),
        summary=out("balanced/summary.json"),
    log:
        out("logs/balance.log"),
    benchmark:
        out("benchmarks/balance.tsv")
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
        table=out("balanced/{variant}/train.parquet"),
        summary=out("balanced/{variant}/summary.json"),
    log:
        out("logs/balance/{variant}.log"),
    benchmark:
        out("benchmarks/balance_{variant}.tsv")
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
