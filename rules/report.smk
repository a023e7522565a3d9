rule report:
    input:
        predictions=expand("results/classifier/{arm}/predictions.parquet", arm=ARMS),
        training=expand("results/classifier/{arm}/summary.json", arm=ARMS),
        proteins="results/data/proteins.parquet",
        scores=expand("results/filtered/scores_{shard}.parquet", shard=SHARDS),
        balance="results/balanced/summary.json",
        # for the no-verdict check of an arm on the balanced embedding table without synthetic rows
        embedding_balance=["results/embedding/balanced/summary.json"] if EMBEDDING_AUGMENTATION else [],
        quality="results/quality/metrics.json",
        history="results/diffusion/history.json",
        sections=report_section_files(),
    output:
        html=report(
            "results/report/report.html",
            caption="../report/report_page.rst",
            category="Report",
            labels={"file": "report.html"},
        ),
        tsv=report(
            "results/report/metrics.tsv",
            caption="../report/metrics.rst",
            category="Report",
            labels={"file": "metrics.tsv"},
        ),
        differences=report(
            "results/report/differences.tsv",
            caption="../report/differences.rst",
            category="Report",
            labels={"file": "differences.tsv"},
        ),
        json="results/report/metrics.json",
        provenance="results/report/provenance.json",
        intervals=report(
            "results/report/auprc_intervals.png",
            caption="../report/auprc_intervals.rst",
            category="Figures",
            labels={"figure": "AUPRC intervals"},
        ),
        roc=report(
            "results/report/roc.png",
            caption="../report/roc.rst",
            category="Figures",
            labels={"figure": "ROC"},
        ),
        pr=report(
            "results/report/pr.png",
            caption="../report/pr.rst",
            category="Figures",
            labels={"figure": "precision-recall"},
        ),
        thresholds=report(
            "results/report/thresholds.png",
            caption="../report/thresholds.rst",
            category="Figures",
            labels={"figure": "threshold curves"},
        ),
        quality=report(
            "results/report/quality_scores.png",
            caption="../report/quality_scores.rst",
            category="Figures",
            labels={"figure": "candidate quality"},
        ),
        sweep=(
            report(
                "results/report/ratio_sweep.png",
                caption="../report/ratio_sweep.rst",
                category="Figures",
                labels={"figure": "ratio sweep"},
            )
            if SWEEP_ARMS
            else []
        ),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        ENV
    params:
        arms=ARMS,
        threshold=config["filter"]["quality_threshold"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
        report=config["report"],
        benchmarks="results/benchmarks",
        extra_sections=REPORT_SECTIONS,
        # Provenance block: the config as run, and the inputs whose checksums the page lists (computed by the job).
        config=config,
        inputs=INPUT_PATHS,
        checkout=workflow.basedir,
    script:
        "../workflow_scripts/report.py"
