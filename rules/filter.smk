rule train_critic:
    input:
        "results/features/residues.parquet",
    output:
        "results/filtered/critic.pt",
    log:
        "results/logs/train_critic.log",
    benchmark:
        "results/benchmarks/train_critic.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        classifier=config["classifier"],
        seed=config["seed"],
    script:
        "../workflow_scripts/train_critic.py"


rule filter_shard:
    input:
        candidates="results/generated/shard_{shard}.parquet",
        critic="results/filtered/critic.pt",
        residues="results/features/residues.parquet",
    output:
        kept="results/filtered/shard_{shard}.parquet",
        scores="results/filtered/scores_{shard}.parquet",
    log:
        "results/logs/filter/shard_{shard}.log",
    benchmark:
        "results/benchmarks/filter_shard_{shard}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        ratio=config["balance"]["target_positive_ratio"],
        threshold=config["filter"]["quality_threshold"],
        knn_k=config["filter"]["knn_k"],
        near_copy_fraction=config["filter"]["near_copy_fraction"],
        device=config["filter"]["device"],
        gpu=config["gpu"],
    script:
        "../workflow_scripts/filter_shard.py"
