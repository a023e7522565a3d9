rule train_classifier:
    input:
        unpack(classifier_inputs),
    output:
        predictions=out("classifier/{arm}/predictions.parquet"),
        summary=out("classifier/{arm}/summary.json"),
        models=directory(out("classifier/{arm}/models")),
    log:
        out("logs/train_classifier/{arm}.log"),
    benchmark:
        out("benchmarks/train_classifier_{arm}.tsv")
    priority: classifier_priority
    conda:
        ENV
    threads: classifier_threads
    params:
        # This arm's keys of the classifier section only: another arm's, or the arm list, do not rerun it.
        settings=lambda wildcards: arm_settings(wildcards.arm, config["classifier"]),
        seed_processes=classifier_seed_processes,
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        seed=config["seed"],
    message:
        "Training arm {wildcards.arm} ({params.settings[seeds]} seeds, {params.seed_processes} at a time, {threads} cores); progress: tail -f {log}"
    script:
        "../workflow_scripts/train_classifier.py"


rule tree_scores:
    input:
        out("features/residues.parquet"),
    output:
        scores=out("features/tree_scores.parquet"),
        summary=out("features/tree_scores.json"),
    log:
        out("logs/tree_scores.log"),
    benchmark:
        out("benchmarks/tree_scores.tsv")
    priority: CRITICAL_PATH_PRIORITY
    conda:
        ENV
    # Its fold fits run side by side (one process each), and graph_transformer waits for it. Every core, even where
    # the fits use fewer: with 12 of 16 cores, the jobs started beside it slowed it from 22.5 to 35.1 s on the critical
    # path (bench/RESULTS.md, 2026-12-06). All but compile_graph_transformer's two when that job runs beside it.
    threads: cores_beside_compile()
    params:
        gbdt=lookup(within=config, dpath="classifier/gbdt"),
        seed=config["seed"],
    message:
        "Out-of-fold tree scores for graph_transformer's input, and the gbdt arm's grid point (up to {threads} fits at a time); progress: tail -f {log}"
    script:
        "../workflow_scripts/tree_scores.py"


rule compile_graph_transformer:
    output:
        COMPILED_STEP,
    log:
        out("logs/compile_graph_transformer.log"),
    benchmark:
        out("benchmarks/compile_graph_transformer.tsv")
    priority: CRITICAL_PATH_PRIORITY
    conda:
        ENV
    threads: COMPILE_THREADS
    resources:
        gpu=1,
    params:
        settings=lookup(within=config, dpath="classifier/graph_transformer"),
        seed=config["seed"],
        gpu=lookup(within=config, dpath="gpu"),
    message:
        f"Compiling {EMBEDDING_MODEL_ARM}'s training step once, ahead of its fits ({{threads}} compiler workers); progress: tail -f {{log}}"
    script:
        "../workflow_scripts/compile_graph_transformer.py"
