rule train_diffusion:
    input:
        residues=out("features/residues.parquet"),
        standardisation=out("features/standardisation.json"),
        edges=out("features/edges.parquet"),
    output:
        model=out("diffusion/model.pt"),
        contexts=out("diffusion/contexts.parquet"),
        history=out("diffusion/history.json"),
    log:
        out("logs/train_diffusion.log"),
    benchmark:
        out("benchmarks/train_diffusion.tsv")
    priority: GENERATION_CHAIN_PRIORITY
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        # Training reads every key of the section: the network's (DiffusionConfig), the codec's, the loop's, the device.
        diffusion=lookup(within=config, dpath="diffusion"),
        seed=config["seed"],
        gpu=lookup(within=config, dpath="gpu"),
    message:
        "Training the diffusion model (up to {params.diffusion[steps]} steps; minutes on a CPU); progress: tail -f {log}"
    script:
        "../workflow_scripts/train_diffusion.py"
