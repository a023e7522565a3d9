# Every core of --cores unless features.threads caps it (Snakemake lowers a larger cap to --cores); without --cores (a
# dry run, --lint, a cluster executor) the top-level threads. A cluster job's own Snakemake runs with `--cores all`
# (every core of its node): it keeps the count the job was submitted with, or its step asks SLURM for more CPUs than
# the job was given.
def features_threads():
    submitting = workflow.is_main_process and workflow.local_exec
    cores = workflow.resource_settings.cores if submitting else None
    return config["features"]["threads"] or cores or config["threads"]


rule features:
    input:
        out("data/proteins.parquet"),
    output:
        residues=out("features/residues.parquet"),
        edges=out("features/edges.parquet"),
        standardisation=out("features/standardisation.json"),
    log:
        out("logs/features.log"),
    benchmark:
        out("benchmarks/features.tsv")
    conda:
        ENV
    threads: features_threads()
    params:
        radii=config["features"]["neighbour_radii"],
        graph_radius=config["features"]["graph_radius"],
        groups=config["features"]["groups"],
        precomputed=config["features"]["precomputed"],
        distance_maps=config["features"]["distance_maps"],
        invalid_protein=config["features"]["invalid_protein"],
        inputs={k: v for k, v in USER_INPUTS.items() if k.startswith("features.")},
    message:
        "Features of every protein ({threads} worker processes); progress: tail -f {log}"
    script:
        "../workflow_scripts/features.py"
