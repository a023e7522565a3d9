rule make_demo:
    output:
        labels=out("demo/labels.fa"),
        structures=directory(out("demo/pdb")),
    log:
        out("logs/make_demo.log"),
    benchmark:
        out("benchmarks/make_demo.tsv")
    conda:
        ENV
    params:
        n_proteins=config["demo"]["n_proteins"],
        min_length=config["demo"]["min_length"],
        max_length=config["demo"]["max_length"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_demo.py"
