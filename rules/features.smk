rule features:
    input:
        "results/data/proteins.parquet",
    output:
        residues="results/features/residues.parquet",
        edges="results/features/edges.parquet",
        standardisation="results/features/standardisation.json",
    params:
        radii=config["features"]["neighbour_radii"],
        graph_radius=config["features"]["graph_radius"],
    threads: config["features"]["threads"]
    log:
        "results/logs/features.log",
    benchmark:
        "results/benchmarks/features.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/features.py"
