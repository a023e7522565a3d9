rule train_diffusion:
    input:
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
    output:
        model="results/diffusion/model.pt",
        contexts="results/diffusion/contexts.parquet",
        history="results/diffusion/history.json",
    params:
        diffusion=config["diffusion"],
        seed=config["seed"],
        gpu=config["gpu"],
    resources:
        gpu=1,
    threads: config["threads"]
    log:
        "results/logs/train_diffusion.log",
    # No message: a dry run then prints the rule's block with its resources and log path (tests/test_slurm.py reads
    # them), and the log is where the progress is.
    benchmark:
        "results/benchmarks/train_diffusion.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/train_diffusion.py"
