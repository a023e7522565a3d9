rule report:
    input:
        predictions=expand(out("classifier/{arm}/predictions.parquet"), arm=ARMS),
        training=expand(out("classifier/{arm}/summary.json"), arm=ARMS),
        proteins=out("data/proteins.parquet"),
        scores=expand(out("filtered/scores_{shard}.parquet"), shard=SHARDS),
        balance=out("balanced/summary.json"),
        # for the no-verdict check of an arm on the balanced embedding table without synthetic rows
        embedding_balance=[out("embedding/balanced/summary.json")] if EMBEDDING_AUGMENTATION else [],
        sample_quality=out("sample_quality/metrics.json"),
        history=out("diffusion/history.json"),
        sections=report_section_files(),
    output:
        html=report(
            out("report/report.html"),
            caption="../report/report_page.rst",
            category="Report",
            labels={"file": "report.html"},
        ),
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
        provenance=report(
            out("report/provenance.json"),
            caption="../report/provenance.rst",
            category="Report",
            labels={"file": "provenance.json"},
        ),
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
        quality=report(
            out("report/quality_scores.png"),
            caption="../report/quality_scores.rst",
            category="Figures",
            labels={"figure": "candidate quality"},
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
        out("logs/report.log"),
    benchmark:
        out("benchmarks/report.tsv")
    conda:
        ENV
    params:
        arms=ARMS,
        threshold=config["filter"]["quality_threshold"],
        ratio=config["balance"]["target_positive_ratio"],
        seed=config["seed"],
        report=config["report"],
        benchmarks=out("benchmarks"),
        extra_sections=REPORT_SECTIONS,
        # Provenance block: the config as run, and the inputs whose checksums the page lists (computed by the job).
        config=config,
        inputs=INPUT_PATHS,
        checkout=workflow.basedir,
    script:
        "../workflow_scripts/report.py"
