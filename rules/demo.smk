rule make_demo:
    output:
        labels="results/demo/labels.fa",
        structures=directory("results/demo/pdb"),
    log:
        "results/logs/make_demo.log",
    benchmark:
        "results/benchmarks/make_demo.tsv"
    conda:
        ENV
    params:
        n_proteins=config["demo"]["n_proteins"],
        min_length=config["demo"]["min_length"],
        max_length=config["demo"]["max_length"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_demo.py"
