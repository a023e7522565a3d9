rule features:
    input:
        "results/data/proteins.parquet",
    output:
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
        standardisation="results/features/standardisation.json",
    log:
        "results/logs/features.log",
    benchmark:
        "results/benchmarks/features.tsv"
    conda:
        ENV
    threads: config["features"]["threads"]
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
