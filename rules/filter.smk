rule train_critic:
    input:
        out("features/residues.parquet"),
    output:
        out("filtered/critic.pt"),
    log:
        out("logs/train_critic.log"),
    benchmark:
        out("benchmarks/train_critic.tsv")
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    threads: config["threads"]
    params:
        critic=lookup(within=config, dpath="filter/critic"),
        device=lookup(within=config, dpath="classifier/device"),
        seed=config["seed"],
    script:
        "../workflow_scripts/train_critic.py"


rule filter_shard:
    input:
        candidates=out("generated/shard_{shard}.parquet"),
        critic=out("filtered/critic.pt"),
        residues=out("features/residues.parquet"),
        plan=out("generated/plan.parquet"),
    output:
        kept=out("filtered/shard_{shard}.parquet"),
        scores=out("filtered/scores_{shard}.parquet"),
    log:
        out("logs/filter/shard_{shard}.log"),
    benchmark:
        out("benchmarks/filter_shard_{shard}.tsv")
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        threshold=config["filter"]["quality_threshold"],
        knn_k=config["filter"]["knn_k"],
        near_copy_fraction=config["filter"]["near_copy_fraction"],
        device=config["filter"]["device"],
        gpu=config["gpu"],
    script:
        "../workflow_scripts/filter_shard.py"
