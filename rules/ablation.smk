# Feature-group ablation (report.feature_ablation): per setting, the feature table with only its groups, built by the
# features rule's own script, then the `none` arm on it; ablation_summary compares the settings.

ABLATION_ARM = "none"  # real rows only: the settings differ in their features alone


use rule features as ablation_features with:
    output:
        residues=out("ablation/{setting}/residues.parquet"),
        edges=out("ablation/{setting}/edges.parquet"),
        standardisation=out("ablation/{setting}/standardisation.json"),
    log:
        out("logs/ablation/features_{setting}.log"),
    benchmark:
        out("benchmarks/ablation_features_{setting}.tsv")
    params:
        groups=lambda wildcards: list(ABLATION[wildcards.setting]),


rule ablation_classifier:
    input:
        residues=out("ablation/{setting}/residues.parquet"),
    output:
        predictions=out("ablation/{setting}/predictions.parquet"),
        summary=out("ablation/{setting}/summary.json"),
    log:
        out("logs/ablation/classifier_{setting}.log"),
    benchmark:
        out("benchmarks/ablation_classifier_{setting}.tsv")
    conda:
        ENV
    threads: config["threads"]
    params:
        groups=lambda wildcards: list(ABLATION[wildcards.setting]),
        arm=ABLATION_ARM,
        settings=arm_settings(ABLATION_ARM, config["classifier"]),
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        seed=config["seed"],
    script:
        "../workflow_scripts/ablation_classifier.py"


rule ablation_summary:
    input:
        predictions=expand(out("ablation/{setting}/predictions.parquet"), setting=ABLATION),
        training=expand(out("ablation/{setting}/summary.json"), setting=ABLATION),
    output:
        json=out("ablation/metrics.json"),
        tsv=report(
            out("ablation/metrics.tsv"),
            caption="../report/ablation_metrics.rst",
            category="Feature-group ablation",
            labels={"file": "metrics.tsv"},
        ),
        table=report(
            out("ablation/table.tsv"),
            caption="../report/ablation_table.rst",
            category="Feature-group ablation",
            labels={"file": "table.tsv"},
        ),
        plot=report(
            out("ablation/metrics.png"),
            caption="../report/ablation_plot.rst",
            category="Feature-group ablation",
            labels={"figure": "feature-group ablation"},
        ),
    log:
        out("logs/ablation/summary.log"),
    benchmark:
        out("benchmarks/ablation_summary.tsv")
    conda:
        ENV
    threads: 1
    params:
        settings=list(ABLATION),
        bootstrap_resamples=config["report"]["bootstrap_resamples"],
        confidence=config["report"]["confidence"],
        seed=config["seed"],
    script:
        "../workflow_scripts/ablation_summary.py"
