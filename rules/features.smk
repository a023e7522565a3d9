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
