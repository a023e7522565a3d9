rule generate:
    input:
        model="results/diffusion/model.pt",
        contexts="results/diffusion/contexts.parquet",
        residues="results/features/residues.parquet",
    output:
        "results/generated/shard_{shard}.parquet",
    log:
        "results/logs/generate/shard_{shard}.log",
    benchmark:
        "results/benchmarks/generate_shard_{shard}.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        shards=config["generation"]["shards"],
        sample_multiplier=config["generation"]["sample_multiplier"],
        chunk_size=config["generation"]["chunk_size"],
        precision=config["generation"]["precision"],
        sampler=config["generation"]["sampler"],
        sampler_steps=config["generation"]["sampler_steps"],
        cuda_graph=config["generation"]["cuda_graph"],
        compile=config["generation"]["compile"],
        ratio=config["balance"]["target_positive_ratio"],
        device=config["diffusion"]["device"],
        seed=config["seed"],
        gpu=config["gpu"],
    message:
        "Generating candidates, shard {wildcards.shard}; progress: tail -f {log}"
    script:
        "../workflow_scripts/generate.py"
