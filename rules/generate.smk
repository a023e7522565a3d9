rule generate:
    input:
        model=out("diffusion/model.pt"),
        contexts=out("diffusion/contexts.parquet"),
        residues=out("features/residues.parquet"),
    output:
        out("generated/shard_{shard}.parquet"),
    log:
        out("logs/generate/shard_{shard}.log"),
    benchmark:
        out("benchmarks/generate_shard_{shard}.tsv")
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
