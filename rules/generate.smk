# Each training protein's quota of synthetic positives, its shard and the shard's seed, decided once for generate,
# filter_shard and balance_variant.
rule plan_generation:
    input:
        out("features/residues.parquet"),
    output:
        out("generated/plan.parquet"),
    log:
        out("logs/plan_generation.log"),
    benchmark:
        out("benchmarks/plan_generation.tsv")
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    params:
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        shards=lookup(within=config, dpath="generation/shards"),
        seed=config["seed"],
    script:
        "../workflow_scripts/plan_generation.py"


rule generate:
    input:
        model=out("diffusion/model.pt"),
        contexts=out("diffusion/contexts.parquet"),
        plan=out("generated/plan.parquet"),
    output:
        out("generated/shard_{shard}.parquet"),
    log:
        out("logs/generate/shard_{shard}.log"),
    benchmark:
        out("benchmarks/generate_shard_{shard}.tsv")
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        sample_multiplier=config["generation"]["sample_multiplier"],
        chunk_size=config["generation"]["chunk_size"],
        precision=config["generation"]["precision"],
        sampler=config["generation"]["sampler"],
        sampler_steps=config["generation"]["sampler_steps"],
        cuda_graph=config["generation"]["cuda_graph"],
        compile=config["generation"]["compile"],
        device=config["diffusion"]["device"],
        gpu=config["gpu"],
    message:
        "Generating candidates, shard {wildcards.shard}; progress: tail -f {log}"
    script:
        "../workflow_scripts/generate.py"
