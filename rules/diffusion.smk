rule train_diffusion:
    input:
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
    output:
        model="results/diffusion/model.pt",
        contexts="results/diffusion/contexts.parquet",
        history="results/diffusion/history.json",
    log:
        "results/logs/train_diffusion.log",
    benchmark:
        "results/benchmarks/train_diffusion.tsv"
    conda:
        ENV
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        diffusion=config["diffusion"],
        seed=config["seed"],
        gpu=config["gpu"],
    message:
        "Training the diffusion model (up to {params.diffusion[steps]} steps; minutes on a CPU); progress: tail -f {log}"
    script:
        "../workflow_scripts/train_diffusion.py"
