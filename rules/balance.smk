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
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    params:
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
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
    priority: variant_priority
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        seed=config["seed"],
        # The filter settings only for the kind that runs the filter (smote_filtered), so a change to them reruns
        # neither the unfiltered nor the sweep tables.
        settings=variant_settings,
        gpu=lookup(within=config, dpath="gpu"),
    script:
        "../workflow_scripts/balance_variant.py"
