rule train_classifier:
    input:
        unpack(classifier_inputs),
    output:
        predictions="results/classifier/{arm}/predictions.parquet",
        summary="results/classifier/{arm}/summary.json",
        models=directory("results/classifier/{arm}/models"),
    log:
        "results/logs/train_classifier/{arm}.log",
    benchmark:
        "results/benchmarks/train_classifier_{arm}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        classifier=config["classifier"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    message:
        "Training arm {wildcards.arm} ({params.classifier[seeds]} seeds); progress: tail -f {log}"
    script:
        "../workflow_scripts/train_classifier.py"


rule tree_scores:
    input:
        "results/features/residues.parquet",
    output:
        scores="results/features/tree_scores.parquet",
        summary="results/features/tree_scores.json",
    log:
        "results/logs/tree_scores.log",
    benchmark:
        "results/benchmarks/tree_scores.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        gbdt=lookup(within=config, dpath="classifier/gbdt"),
        seed=config["seed"],
    message:
        "Out-of-fold tree scores for graph_transformer's input; progress: tail -f {log}"
    script:
        "../workflow_scripts/tree_scores.py"
