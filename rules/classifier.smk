rule train_classifier:
    input:
        unpack(classifier_inputs),
    output:
        predictions="results/classifier/{arm}/predictions.parquet",
        summary="results/classifier/{arm}/summary.json",
        models=directory("results/classifier/{arm}/models"),
    params:
        classifier=config["classifier"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    threads: config["threads"]
    log:
        "results/logs/train_classifier/{arm}.log",
    message:
        "Training arm {wildcards.arm} ({params.classifier[seeds]} seeds); progress: tail -f {log}"
    benchmark:
        "results/benchmarks/train_classifier_{arm}.tsv"
    conda:
        ENV
    script:
        "../workflow_scripts/train_classifier.py"
