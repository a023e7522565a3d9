rule train_classifier:
    input:
        unpack(classifier_inputs),
    output:
        predictions=out("classifier/{arm}/predictions.parquet"),
        summary=out("classifier/{arm}/summary.json"),
        models=directory(out("classifier/{arm}/models")),
    params:
        classifier=config["classifier"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
    threads: config["threads"]
    log:
        out("logs/train_classifier/{arm}.log"),
    message:
        "Training arm {wildcards.arm} ({params.classifier[seeds]} seeds); progress: tail -f {log}"
    benchmark:
        out("benchmarks/train_classifier_{arm}.tsv")
    conda:
        ENV
    script:
        "../workflow_scripts/train_classifier.py"
