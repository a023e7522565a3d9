import json
import re

import numpy as np
import pandas as pd
import pytest

from helpers import write_report
from siteaug.evaluation.comparison import verdict_sentence
from siteaug.evaluation.figures import _difference_figure
from siteaug.evaluation.report import critical_path, evidence_warnings
from siteaug.evaluation.stage_timing import benchmark_intervals, read_benchmarks
from siteaug.runtime.io import InputError


def _arm(separation: float, seed: int, seeds=(0, 1), n: int = 600) -> pd.DataFrame:
    frames = []
    for s in seeds:
        rng = np.random.default_rng(seed * 100 + s)
        label = (np.arange(n) % 5 == 0).astype(int)  # same labels in every arm, as on one shared test split
        score = 1 / (1 + np.exp(-(separation * (2 * label - 1) + rng.normal(0, 1, n))))
        frames.append(pd.DataFrame({
            "protein_id": [f"P{i // 30:02d}" for i in range(n)], "position": np.arange(n) % 30, "label": label,
            "seed": s, "score": score, "threshold": 0.5, "split": "test",
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    (out / "quality.json").write_text(json.dumps({"precision": 0.8, "nested": {"recall": 0.5}}))
    predictions = {"none": _arm(0.3, 1), "smote": _arm(0.35, 2), "diffusion <aug>": _arm(2.0, 3),
                   "diffusion_ratio0.5": _arm(1.0, 4)}
    metrics = write_report(
        predictions, out, n_resamples=1000, seed=0, sweep={"diffusion_ratio0.5": 0.5, "diffusion <aug>": 0.9},
        quality_scores=np.random.default_rng(0).random(200), quality_threshold=0.6,
        stage_counts={"labels": 1200, "candidates": 200, "kept": 150},
        timings={"train_baseline": 12.34, "generate": 56.7},
        extra_sections={"Generation quality": {"tables": [str(out / "quality.json")], "images": [str(out / "roc.png")]}},
        title="toy & report",
    )
    return out, metrics


def test_write_report_writes_all_files(report):
    out, metrics = report
    for name in ("metrics.tsv", "differences.tsv", "metrics.json", "report.html", "roc.png", "pr.png", "thresholds.png",
                 "auprc_intervals.png", "auprc_differences.png", "ratio_sweep.png", "quality_scores.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files behind
    tsv = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert tsv["arm"].tolist() == ["none", "smote", "diffusion <aug>", "diffusion_ratio0.5"] * 2
    assert tsv["aggregation"].tolist() == ["pooled"] * 4 + ["per_protein"] * 4
    assert (tsv["n_residues"] == 600).all() and (tsv["n_proteins"] == 20).all() and (tsv["seeds"] == 2).all()
    for m in ("auprc", "auroc", "mcc", "f1"):
        assert (tsv[f"{m}_low"] <= tsv[m] + 1e-9).all() and (tsv[m] <= tsv[f"{m}_high"] + 1e-9).all()
    data = json.loads((out / "metrics.json").read_text())
    assert data["protocol"]["bootstrap_resamples"] == 1000
    assert len(data["metrics"][0]["auprc_per_seed"]) == 2
    assert data["metrics"][0]["auprc"] == pytest.approx(np.mean(data["metrics"][0]["auprc_per_seed"]))


def test_differences_and_verdicts(report):
    out, _ = report
    diffs = pd.read_csv(out / "differences.tsv", sep="\t")
    pooled = diffs[(diffs["metric"] == "auprc") & (diffs["aggregation"] == "pooled")].set_index(["arm", "reference"])
    # The well-separated arm beats both references; none and smote are not compared with themselves.
    assert pooled.loc[("diffusion <aug>", "none"), "verdict"] == "better"
    assert pooled.loc[("diffusion <aug>", "smote"), "verdict"] == "better"
    assert ("none", "none") not in pooled.index and ("smote", "smote") not in pooled.index
    verdicts = {v["arm"]: v["verdict"] for v in json.loads((out / "metrics.json").read_text())["verdicts"]}
    assert verdicts["diffusion <aug>"] == "better than none and SMOTE on AUPRC"
    assert set(verdicts) == {"none", "smote", "diffusion <aug>", "diffusion_ratio0.5"}


def test_paired_difference_figure_shows_each_compared_arm_with_its_interval_and_zero(report):
    from matplotlib.colors import to_rgba

    out, _ = report
    assert (out / "auprc_differences.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'alt="Paired AUPRC differences against the references"' in (out / "report.html").read_text()
    diffs = pd.read_csv(out / "differences.tsv", sep="\t")
    pooled = diffs[(diffs["aggregation"] == "pooled") & (diffs["test_set"] == "test")]
    fig = _difference_figure(pooled)
    assert [ax.get_title() for ax in fig.axes] == ["against none", "against smote"]
    # one row per arm, shared by the panels
    rows = {t.get_text(): t.get_position()[1] for t in fig.axes[0].get_yticklabels()}
    assert list(rows) == ["none", "smote", "diffusion <aug>", "diffusion_ratio0.5"]
    for ax, reference in zip(fig.axes, ("none", "smote")):
        compared = pooled[(pooled["reference"] == reference) & (pooled["metric"] == "auprc")]
        assert len(ax.containers) == len(compared) == 3 and reference not in set(compared["arm"])
        assert any(list(line.get_xdata()) == [0, 0] for line in ax.lines)  # the zero line
        for container, row in zip(ax.containers, compared.itertuples()):
            (start, y), (end, _) = container.lines[2][0].get_segments()[0]
            assert (start, end) == pytest.approx((row.low, row.high)) and y == rows[row.arm]
            assert container.lines[0].get_xdata()[0] == pytest.approx(row.difference)
            expected = {"better": "tab:green", "worse": "tab:red"}.get(row.verdict, "black")
            assert to_rgba(container.lines[0].get_color()) == to_rgba(expected)
    auprc = pooled[pooled["metric"] == "auprc"].set_index(["arm", "reference"])
    assert auprc.loc[("diffusion <aug>", "none"), "verdict"] == "better"  # so one point is green


def test_paired_difference_figure_without_a_reference_says_so(tmp_path):
    write_report({"a": _arm(1.0, 3), "b": _arm(0.5, 4)}, tmp_path, n_resamples=1000)
    assert (tmp_path / "auprc_differences.png").stat().st_size > 0
    fig = _difference_figure(pd.read_csv(tmp_path / "differences.tsv", sep="\t"))
    assert "nothing to compare" in fig.axes[0].texts[0].get_text()


def test_verdict_sentence():
    assert verdict_sentence({"none": "worse", "smote": "worse"}) == "worse than none and SMOTE on AUPRC"
    assert verdict_sentence({"none": "no detectable difference", "smote": "no detectable difference"}) == \
        "no detectable difference from none or SMOTE on AUPRC"
    assert verdict_sentence({"none": "better", "smote": "no detectable difference"}) == \
        "better than none; no detectable difference from SMOTE on AUPRC"


def test_html_is_self_contained_verdict_first_and_escaped(report):
    out, _ = report
    text = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    # intervals, paired differences, roc, pr, thresholds, sweep, quality, and the extra section's image
    assert text.count('src="data:image/png;base64,') == 8
    assert "toy &amp; report" in text and "diffusion &lt;aug&gt;" in text
    assert text.index("Verdict") < text.index("Metrics") < text.index("ROC curves")
    assert "better than none and SMOTE on AUPRC" in text
    # every table sits in a scrolling box: the wide metric tables must not run off the page
    assert text.count("<table>") == text.count('<div class="wide"><table>') > 0
    assert "Generation quality" in text and "nested.recall" in text
    cells = [text.index(f"<td>{stage}</td>") for stage in ("labels", "candidates", "kept")]
    assert cells == sorted(cells)
    assert "train_baseline" in text and "56.7" in text


def test_external_test_set_is_reported_separately(tmp_path):
    predictions = {"none": _arm(0.5, 1, seeds=(0,)), "smote": _arm(1.0, 2, seeds=(0,))}
    ids = sorted(predictions["none"]["protein_id"].unique())
    proteins = pd.DataFrame({"protein_id": ids, "source": ["labels"] * 10 + ["external_test"] * 10})
    metrics = write_report(predictions, tmp_path, proteins=proteins, n_resamples=1000)
    assert metrics["test_set"].unique().tolist() == ["test", "external test"]
    assert (metrics["n_proteins"] == 10).all()
    text = (tmp_path / "report.html").read_text()
    assert "Verdict (external test set" in text


def test_report_without_optional_sections(tmp_path):
    write_report({"only": _arm(1.0, 3)}, tmp_path, n_resamples=1000)
    text = (tmp_path / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 5 and not (tmp_path / "quality_scores.png").exists()
    assert "neither none nor smote" in text


def test_write_report_rejects_bad_predictions(tmp_path):
    df = _arm(1.0, 4)
    with pytest.raises(InputError, match="one frozen threshold per seed"):
        write_report({"a": df.assign(threshold=np.linspace(0, 1, len(df)))}, tmp_path)
    with pytest.raises(InputError, match="test split"):
        write_report({"a": df.assign(split="val")}, tmp_path)
    with pytest.raises(InputError, match="missing column"):
        write_report({"a": df.drop(columns="score")}, tmp_path)
    with pytest.raises(InputError, match="other residues"):
        write_report({"a": df[~((df["seed"] == 1) & (df["position"] == 0))]}, tmp_path)
    with pytest.raises(InputError, match="not found"):
        write_report({"a": df}, tmp_path, extra_sections={"x": {"images": [str(tmp_path / "absent.png")]}})


def test_read_benchmarks(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train_baseline.tsv").write_text(header + "12.5000\t0:00:12\t100.1\t200.2\t1\t1\t0\t0\t95.0\t11.9\n")
    (tmp_path / "generate.tsv").write_text(header + "3.0\t0:00:03\t1\t1\t1\t1\t0\t0\t1\t1\n"
                                           "5.0\t0:00:05\t1\t1\t1\t1\t0\t0\t1\t1\n")
    got = read_benchmarks([tmp_path / "train_baseline.tsv", str(tmp_path / "generate.tsv")])
    assert got == {"train_baseline": 12.5, "generate": 4.0}
    (tmp_path / "bad.tsv").write_text("seconds\tx\n1\t2\n")
    with pytest.raises(InputError, match="first column is 's'"):
        read_benchmarks([tmp_path / "bad.tsv"])
    with pytest.raises(InputError, match="not found"):
        read_benchmarks([tmp_path / "missing.tsv"])


# ---------------------------------------------------------------- answer, warnings, stage times, provenance


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """8 test proteins, a separable generator, a diffusion loss still falling, and a provenance block."""
    out = tmp_path_factory.mktemp("small")
    predictions = {arm: _arm(sep, seed, n=240) for arm, sep, seed in (("none", 0.3, 1), ("smote", 0.35, 2), ("diffusion", 2.0, 3))}
    history = [{"step": 100, "validation_loss": 0.61}, {"step": 200, "validation_loss": 0.55},
               {"step": 300, "validation_loss": 0.52}]
    provenance = {"git_commit": "0123abc", "date": "2026-01-02 03:04:05 UTC", "cpu": "Toy CPU (2 logical cores)",
                  "gpu": "none (CPU only)", "packages": {"numpy": "9.9"},
                  "inputs": {"input.labels": {"path": "in/labels.fa", "sha256": "ab" * 32, "files": 1, "bytes": 123}},
                  "config": {"seed": 0, "classifier": {"epochs": 5}}}
    metrics = write_report(predictions, out, n_resamples=300, timings={"a_fast": 1.0, "b_slow": 30.0, "c_mid": 9.0},
                           job_intervals={"a_fast": (1000.0, 1001.0), "c_mid": (1001.4, 1010.4), "b_slow": (1010.6, 1040.6)},
                           quality_metrics={"c2st_auc_continuous": 0.998}, diffusion_history=history, provenance=provenance)
    return out, metrics, (out / "report.html").read_text()


def test_the_page_opens_with_a_one_sentence_answer(small_report):
    out, metrics, text = small_report
    answer = re.search(r'<p class="answer">(.*?)</p>', text).group(1)
    assert text.index('class="answer"') < text.index("<h2>")
    assert answer.startswith("On the test set (8 proteins, AUPRC pooled over residues), diffusion augmentation")
    assert answer.endswith("better than none and SMOTE on AUPRC.") and answer.count(". ") == 0
    auprc = metrics.set_index(["aggregation", "arm"]).loc[("pooled", "diffusion"), "auprc"]
    assert f"(arm diffusion, {auprc:.3f};" in answer


def test_weak_evidence_is_flagged(small_report):
    _, _, text = small_report
    warning = text[text.index('class="warning"'):text.index("</div>", text.index('class="warning"'))]
    assert "only 8 proteins (fewer than 20)" in warning
    assert "0.998" in warning and "trivially separable" in warning
    assert "still falling at its last evaluation (step 300: 0.5500 → 0.5200)" in warning


def test_no_warning_when_the_evidence_is_fine():
    metrics = pd.DataFrame({"test_set": ["test"], "n_proteins": [40]})
    converged = [{"step": 100, "validation_loss": 0.5}, {"step": 200, "validation_loss": 0.4}, {"step": 300, "validation_loss": 0.45}]
    assert evidence_warnings(metrics, {"c2st_auc_continuous": 0.7}, converged) == []
    assert evidence_warnings(metrics, {"c2st_auc_continuous": None}, converged[:1]) == []
    assert len(evidence_warnings(metrics.assign(n_proteins=19), None, None)) == 1


def test_stage_times_sorted_longest_first_with_total(small_report):
    _, _, text = small_report
    section = text[text.index("Time per stage"):]
    cells = [section.index(f"<td>{stage}</td>") for stage in ("b_slow", "c_mid", "a_fast")]
    assert cells == sorted(cells)
    assert "<td>total (sum of job times; jobs that ran in parallel overlap)</td><td>40.0</td>" in section
    assert "<td>75 %</td>" in section  # b_slow: 30 of 40 s


def test_critical_path_follows_what_each_job_waited_on():
    intervals = {"prepare": (0.0, 5.0), "features": (5.2, 20.0), "train_critic": (20.1, 25.0), "train_diffusion": (20.3, 80.0),
                 "train_classifier_none": (25.2, 60.0), "plan_generation": (80.2, 81.0), "generate_shard_1": (81.1, 100.0),
                 "generate_shard_2": (81.0, 99.5)}
    assert critical_path(intervals) == ["prepare", "features", "train_diffusion", "plan_generation", "generate_shard_1"]
    # A job of an earlier run (more than a minute before) ends the chain; one second of clock error is allowed.
    rerun = {"features": (-500.0, -400.0), "train_classifier_none": (0.0, 30.0), "report_input": (30.5, 40.0)}
    assert critical_path(rerun) == ["train_classifier_none", "report_input"]
    assert critical_path({"a": (0.0, 10.0), "b": (9.5, 12.0)}) == ["a", "b"]
    assert critical_path({}) == []


def test_benchmark_intervals_end_when_the_file_was_written(tmp_path):
    import os

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "features.tsv").write_text(header + "12.5\t0:00:12\t1\t1\t1\t1\t0\t0\t95.0\t11.9\n")
    os.utime(tmp_path / "features.tsv", (1_000_000.0, 1_000_000.0))
    assert benchmark_intervals([tmp_path / "features.tsv"]) == {"features": (999_987.5, 1_000_000.0)}
    (tmp_path / "bad.tsv").write_text("seconds\n1\n")
    with pytest.raises(InputError, match="first column is 's'"):
        benchmark_intervals([tmp_path / "bad.tsv"])


def test_the_critical_path_is_under_the_stage_times(small_report):
    _, _, text = small_report
    section = text[text.index("<h3>Critical path</h3>"):text.index("<h2>Provenance</h2>")]
    assert text.index("Time per stage") < text.index("<h3>Critical path</h3>")
    cells = [section.index(f"<td>{stage}</td>") for stage in ("a_fast", "c_mid", "b_slow")]  # in run order
    assert cells == sorted(cells)
    assert "<td>b_slow</td><td>10.6</td><td>30.0</td>" in section
    assert "<td>critical path, first start to last end</td><td></td><td>40.6</td>" in section


def test_provenance_is_on_the_page_and_beside_it_but_not_in_the_tables(small_report):
    out, _, text = small_report
    block = text[text.index("<h2>Provenance</h2>"):]
    for fact in ("0123abc", "2026-01-02 03:04:05 UTC", "Toy CPU", "none (CPU only)", "in/labels.fa", "ab" * 32, "epochs: 5"):
        assert fact in block, fact
    assert json.loads((out / "provenance.json").read_text())["inputs"]["input.labels"]["bytes"] == 123
    for name in ("metrics.tsv", "metrics.json", "differences.tsv"):
        assert "0123abc" not in (out / name).read_text() and "2026-01-02" not in (out / name).read_text()


def test_answer_without_a_diffusion_arm_names_the_best_arm(tmp_path):
    write_report({"none": _arm(0.3, 1), "smote": _arm(1.5, 2)}, tmp_path, n_resamples=200)
    answer = re.search(r'<p class="answer">(.*?)</p>', (tmp_path / "report.html").read_text()).group(1)
    assert "no diffusion arm; the best arm is smote" in answer
