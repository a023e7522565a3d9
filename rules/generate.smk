rule generate:
    input:
        model="results/diffusion/model.pt",
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
    output:
        "results/generated/shard_{shard}.parquet",
    params:
        shards=config["generation"]["shards"],
        sample_multiplier=config["generation"]["sample_multiplier"],
        chunk_size=config["generation"]["chunk_size"],
        precision=config["generation"]["precision"],
        ratio=config["balance"]["target_positive_ratio"],
        device=config["diffusion"]["device"],
        seed=config["seed"],
    resources:
        gpu=1,
    threads: config["threads"]
    log:
        "results/logs/generate/shard_{shard}.log",
    benchmark:
        "results/benchmarks/generate_shard_{shard}.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/generate.py"
