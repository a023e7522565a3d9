import json
import re

import numpy as np
import pandas as pd
import pytest

from siteaug.io import InputError
from siteaug.metrics import METRIC_KEYS
from siteaug.report import build_report, read_benchmarks


def _arm(separation: float, seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (np.arange(n) % 5 == 0).astype(int)  # same labels in every arm, as on one shared test split
    score = 1 / (1 + np.exp(-(separation * (2 * label - 1) + rng.normal(0, 1, n))))
    return pd.DataFrame({
        "protein_id": [f"P{i // 100}" for i in range(n)],
        "position": np.arange(n) % 100,
        "label": label,
        "score": score,
        "threshold": 0.5,
        "split": "test",
    })


@pytest.fixture
def report(tmp_path):
    predictions = {"baseline": _arm(0.3, 1), "diffusion <aug>": _arm(2.0, 2)}
    metrics = build_report(
        predictions,
        tmp_path,
        quality_scores=np.random.default_rng(0).random(200),
        quality_threshold=0.6,
        stage_counts={"labels": 1200, "candidates": 200, "kept": 150},
        timings={"train_baseline": 12.34, "generate": 56.7},
        title="toy & report",
    )
    return tmp_path, metrics


def test_build_report_writes_all_files(report):
    out, metrics = report
    for name in ("metrics.tsv", "metrics.json", "report.html", "roc.png", "pr.png", "quality_scores.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files behind

    tsv = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(tsv.columns) == ["arm", *METRIC_KEYS]
    assert tsv["arm"].tolist() == ["baseline", "diffusion <aug>"]
    assert tsv["n_residues"].tolist() == [400, 400] and tsv["threshold"].tolist() == [0.5, 0.5]
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["arm"] for r in rows] == tsv["arm"].tolist()
    assert rows[0]["auroc"] == pytest.approx(tsv["auroc"][0], abs=1e-4)
    assert list(metrics.columns) == list(tsv.columns)


def test_better_separated_arm_has_higher_auroc(report):
    metrics = report[1].set_index("arm")
    assert metrics.loc["diffusion <aug>", "auroc"] > metrics.loc["baseline", "auroc"]


def test_html_is_self_contained_and_escaped(report):
    text = (report[0] / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert text.count('src="data:image/png;base64,') == 3
    assert "toy &amp; report" in text and "diffusion &lt;aug&gt;" in text
    # The better arm's AUROC is bolded; the stage table keeps the given order.
    assert f"<b>{report[1]['auroc'].max():.4f}</b>" in text
    assert f"<td>{report[1]['auroc'].min():.4f}</td>" in text
    cells = [text.index(f"<td>{stage}</td>") for stage in ("labels", "candidates", "kept")]
    assert cells == sorted(cells)
    assert "train_baseline" in text and "56.7" in text


def test_report_without_optional_sections(tmp_path):
    build_report({"only": _arm(1.0, 3)}, tmp_path)
    text = (tmp_path / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 2 and not (tmp_path / "quality_scores.png").exists()


def test_build_report_rejects_bad_predictions(tmp_path):
    df = _arm(1.0, 4)
    with pytest.raises(InputError, match="one frozen threshold"):
        build_report({"a": df.assign(threshold=np.linspace(0, 1, len(df)))}, tmp_path)
    with pytest.raises(InputError, match="test split"):
        build_report({"a": df.assign(split="val")}, tmp_path)
    with pytest.raises(InputError, match="missing column"):
        build_report({"a": df.drop(columns="score")}, tmp_path)
    with pytest.raises(InputError, match="no positives"):
        build_report({"a": df.assign(label=0)}, tmp_path)


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
