# The report in three jobs: evaluate (bootstrap metrics, paired differences, verdicts: report/metrics.json and the two
# TSVs), report_figures (the PNGs, drawn from the predictions and metrics.json) and report (the HTML page). A change to
# the page or a figure reruns neither the bootstrap nor the other job.


rule evaluate:
    input:
        predictions=expand(out("classifier/{arm}/predictions.parquet"), arm=ARMS),
        training=expand(out("classifier/{arm}/summary.json"), arm=ARMS),
        proteins=out("data/proteins.parquet"),
        # for the no-verdict check of a diffusion arm without synthetic rows
        balance=[out("balanced/summary.json")] if GENERATION else [],
        embedding_balance=[out("embedding/balanced/summary.json")] if EMBEDDING_AUGMENTATION else [],
    output:
        tsv=report(
            out("report/metrics.tsv"),
            caption="../report/metrics.rst",
            category="Report",
            labels={"file": "metrics.tsv"},
        ),
        differences=report(
            out("report/differences.tsv"),
            caption="../report/differences.rst",
            category="Report",
            labels={"file": "differences.tsv"},
        ),
        json=report(
            out("report/metrics.json"),
            caption="../report/metrics_json.rst",
            category="Report",
            labels={"file": "metrics.json"},
        ),
    log:
        out("logs/evaluate.log"),
    benchmark:
        out("benchmarks/evaluate.tsv")
    conda:
        ENV
    # Its bootstrap runs one arm per thread (siteaug.evaluation.comparison), and the report waits for it: half_the_cores,
    # so that it starts beside the sample-quality jobs the report waits for too.
    threads: half_the_cores()
    params:
        arms=ARMS,
        bootstrap_resamples=lookup(within=config, dpath="report/bootstrap_resamples"),
        confidence=lookup(within=config, dpath="report/confidence"),
        threshold=lookup(within=config, dpath="filter/quality_threshold"),
        seed=config["seed"],
    script:
        "../workflow_scripts/evaluate.py"


rule report_figures:
    input:
        predictions=expand(out("classifier/{arm}/predictions.parquet"), arm=ARMS),
        proteins=out("data/proteins.parquet"),
        evaluation=out("report/metrics.json"),
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS) if GENERATION else [],
    output:
        intervals=report(
            out("report/auprc_intervals.png"),
            caption="../report/auprc_intervals.rst",
            category="Figures",
            labels={"figure": "AUPRC intervals"},
        ),
        differences_figure=report(
            out("report/auprc_differences.png"),
            caption="../report/auprc_differences.rst",
            category="Figures",
            labels={"figure": "AUPRC paired differences"},
        ),
        roc=report(
            out("report/roc.png"),
            caption="../report/roc.rst",
            category="Figures",
            labels={"figure": "ROC"},
        ),
        pr=report(
            out("report/pr.png"),
            caption="../report/pr.rst",
            category="Figures",
            labels={"figure": "precision-recall"},
        ),
        thresholds=report(
            out("report/thresholds.png"),
            caption="../report/thresholds.rst",
            category="Figures",
            labels={"figure": "threshold curves"},
        ),
        quality=(
            report(
                out("report/quality_scores.png"),
                caption="../report/quality_scores.rst",
                category="Figures",
                labels={"figure": "candidate quality"},
            )
            if GENERATION
            else []
        ),
        sweep=(
            report(
                out("report/ratio_sweep.png"),
                caption="../report/ratio_sweep.rst",
                category="Figures",
                labels={"figure": "ratio sweep"},
            )
            if SWEEP_ARMS
            else []
        ),
    log:
        out("logs/report_figures.log"),
    benchmark:
        out("benchmarks/report_figures.tsv")
    conda:
        ENV
    params:
        arms=ARMS,
        ratio=lookup(within=config, dpath="balance/target_positive_ratio"),
        threshold=lookup(within=config, dpath="filter/quality_threshold"),
    script:
        "../workflow_scripts/report_figures.py"


rule report:
    input:
        evaluation=out("report/metrics.json"),
        figures=rules.report_figures.output,
        proteins=out("data/proteins.parquet"),
        # The generation stages' outputs, when they ran (GENERATION); without them the page says they did not.
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS) if GENERATION else [],
        balance=[out("balanced/summary.json")] if GENERATION else [],
        sample_quality=[out("sample_quality/metrics.json")] if GENERATION else [],
        history=[out("diffusion/history.json")] if GENERATION else [],
        sections=report_section_files(),
        benchmarks=stage_benchmarks,
    output:
        html=report(
            out("report/report.html"),
            caption="../report/report_page.rst",
            category="Report",
            labels={"file": "report.html"},
        ),
        provenance=report(
            out("report/provenance.json"),
            caption="../report/provenance.rst",
            category="Report",
            labels={"file": "provenance.json"},
        ),
    log:
        out("logs/report.log"),
    benchmark:
        out("benchmarks/report.tsv")
    conda:
        ENV
    params:
        threshold=lookup(within=config, dpath="filter/quality_threshold"),
        extra_sections=REPORT_SECTIONS,
        # Provenance block: the config as run, and the inputs whose checksums the page lists (computed by the job).
        config=config,
        inputs=INPUT_PATHS,
        checkout=workflow.basedir,
    script:
        "../workflow_scripts/report.py"
