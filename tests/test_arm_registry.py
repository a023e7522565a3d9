"""siteaug.arms.registry: one description per arm, the schema's arm list, and what the workflow and training read from it."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from helpers import REPO
from siteaug.arms import registry as arm_registry
from siteaug.arms.protocol import FitContext, train_arm
from siteaug.arms.registry import (
    ARM_NAMES,
    BALANCED_ROWS,
    COMMON_SETTINGS,
    EMBEDDING_MODEL_ARM,
    EMBEDDING_TABLE,
    MLP_ARM_SETTINGS,
    RATIO_SWEEP,
    SHARED,
    Arm,
    arm_settings,
    lookup_arm,
    seed_fit_settings,
    sweep_arm,
    workflow_arms,
)
from test_classifier import SETTINGS, residue_table


def schema_arms() -> dict:
    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    return schema["properties"]["classifier"]["properties"]["arms"]


def test_schema_lists_exactly_the_registry_arms_in_registry_order():
    arms = schema_arms()
    assert arms["items"]["enum"] == list(ARM_NAMES)
    assert arms["default"] == list(ARM_NAMES)


def test_importing_the_registry_imports_neither_torch_nor_pandas():
    """rules/common.smk and the config checks use it while Snakemake parses the workflow."""
    code = "import sys, siteaug.arms.registry; assert not {'torch', 'pandas'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_unknown_arm_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown arm 'adasyn'; choose from none, class_weight, .* or diffusion_ratio<ratio>"):
        lookup_arm("adasyn")
    with pytest.raises(ValueError, match="unknown arm 'diffusion_ratiohigh'"):
        lookup_arm("diffusion_ratiohigh")


def test_sweep_arms_are_balanced_variants_of_their_own():
    arm = lookup_arm(sweep_arm(0.5))
    assert arm.name == "diffusion_ratio0.5" and arm.rows == BALANCED_ROWS and arm.variant == RATIO_SWEEP


def test_every_fit_resolves_to_a_function_of_the_fit_context():
    for name in ARM_NAMES:
        fit = lookup_arm(name).fit_function()
        assert callable(fit) and list(fit.__code__.co_varnames[:2]) == ["context", "seed"], name


def test_properties_the_workflow_relies_on():
    arms = {name: lookup_arm(name) for name in ARM_NAMES}
    assert {n for n, a in arms.items() if a.variant} == {"diffusion_unfiltered", "smote_filtered"}
    assert {n for n, a in arms.items() if a.reference} == {"gbdt", "gnn"}
    assert {n for n, a in arms.items() if a.edges} == {"gnn", "graph_transformer"}
    assert {n for n, a in arms.items() if a.model_suffix != ".pt"} == {"gbdt"}
    assert {n for n, a in arms.items() if a.interpolates_positives} == {"smote", "borderline_smote", "smote_filtered", "embedding_smote"}
    # embedding_<base>: base's rows and fit on the embedding table
    for name in ("embedding_none", "embedding_smote", "embedding_diffusion"):
        arm, base = arms[name], arms[arms[name].base]
        assert name == f"embedding_{base.name}" and arm.table == EMBEDDING_TABLE and (arm.rows, arm.fit) == (base.rows, base.fit)
    assert arms["embedding_diffusion"].balanced == SHARED


def test_an_inconsistent_entry_is_refused():
    with pytest.raises(ValueError, match="go together"):
        Arm("half_balanced", rows=BALANCED_ROWS)
    with pytest.raises(ValueError, match="rows 'adasyn'"):
        Arm("adasyn", rows="adasyn")


def test_workflow_arms_adds_sweeps_once_and_the_embedding_model():
    assert workflow_arms(["none", "diffusion_ratio0.5"], [0.5, 0.7]) == ["none", "diffusion_ratio0.5", "diffusion_ratio0.7"]
    assert workflow_arms(["none", "embedding_smote"], []) == ["none", "embedding_smote", EMBEDDING_MODEL_ARM]
    assert workflow_arms([EMBEDDING_MODEL_ARM, "embedding_none"], []) == [EMBEDDING_MODEL_ARM, "embedding_none"]


def test_a_seed_fit_reads_the_arm_settings_but_the_seed_count_and_threshold_choice():
    classifier = {**SETTINGS, "seeds": 3, "threshold_metric": "f1", "device": "cpu", "graph_transformer": {"hidden": 8}}
    fit = seed_fit_settings(EMBEDDING_MODEL_ARM, classifier)
    assert fit == {"device": "cpu", "graph_transformer": {"hidden": 8}}
    assert arm_settings(EMBEDDING_MODEL_ARM, classifier) == {**fit, "seeds": 3, "threshold_metric": "f1"}


def fit_first_feature(context: FitContext, seed: int):
    """A toy arm: its score is the first feature column, its model the seed (stands for an arm added by one entry)."""
    col = context.feature_cols[0]
    context.cache.setdefault("fits", []).append(seed)
    info = {"training_rows": len(context.train), "fits_so_far": len(context.cache["fits"])}
    return seed, context.validation[col].to_numpy(), context.test[col].to_numpy(), info


def test_an_arm_added_by_one_registry_entry_trains(monkeypatch):
    monkeypatch.setitem(arm_registry.ARMS, "first_feature", Arm("first_feature", fit=f"{__name__}:fit_first_feature"))
    residues, _ = residue_table()
    predictions, models, summary = train_arm("first_feature", residues, SETTINGS, 0.5, [3, 4])
    assert models == [3, 4] and [s["fits_so_far"] for s in summary] == [1, 2]  # one context (and cache) for all seeds
    test = residues[residues["split"] == "test"].sort_values(["protein_id", "position"])
    first = predictions[predictions["seed"] == 3]
    np.testing.assert_array_equal(first["score"].to_numpy(), test["f_a"].to_numpy(np.float32))


# The classifier section of a config: SETTINGS of test_classifier plus the keys only the workflow reads.
CLASSIFIER = {**SETTINGS, "seeds": 2, "device": "cpu", "arms": ["none", "gbdt"], "ratio_sweep": [0.4],
              "graph_transformer": {"hidden": 16}}


def test_arm_settings_hold_the_keys_of_that_arm_only():
    assert set(arm_settings("none", CLASSIFIER)) == {*COMMON_SETTINGS, *MLP_ARM_SETTINGS}
    assert set(arm_settings("embedding_diffusion", CLASSIFIER)) == {*COMMON_SETTINGS, *MLP_ARM_SETTINGS}
    assert set(arm_settings("gbdt", CLASSIFIER)) == {*COMMON_SETTINGS, "gbdt"}
    assert arm_settings(EMBEDDING_MODEL_ARM, CLASSIFIER)["graph_transformer"] == {"hidden": 16}
    # What rules/classifier.smk relies on: the arm list, the sweep, other arms' sections leave an arm's settings alone.
    other = {**CLASSIFIER, "arms": ["none"], "ratio_sweep": [], "gnn": {}, "gbdt": {}, "graph_transformer": {}}
    assert arm_settings("none", other) == arm_settings("none", CLASSIFIER)
    assert arm_settings("gbdt", {**CLASSIFIER, "epochs": 99}) == arm_settings("gbdt", CLASSIFIER)


@pytest.mark.parametrize("arm", ["none", "class_weight", "gbdt", "gnn"])
def test_an_arm_trains_on_its_arm_settings_alone(arm):
    """A fit that read a classifier key its Arm.settings does not name would fail here with a KeyError."""
    residues, edges = residue_table()
    predictions, models, _ = train_arm(arm, residues, arm_settings(arm, CLASSIFIER), 0.5, [3], edges=edges)
    assert len(models) == 1 and predictions["score"].between(0, 1).all()


def test_rule_jobs_import_only_what_they_use():
    """Each rule job is a Python process of its own, whose imports cost seconds on a small CPU. What the scripts import
    at the top: train_classifier (an MLP arm) and tree_scores without torch_geometric, imbalanced-learn or skops (only
    gbdt's model files need skops; scikit-learn, whose thread pools the scripts limit, is imported before the limits
    are set); make_demo, evaluate and report without torch or scikit-learn; filter_shard and balance_variant, which
    score with a trained MLP, without imbalanced-learn or scikit-learn."""
    jobs = {
        # (modules, must be absent, must be present)
        "siteaug.arms.protocol, siteaug.arms.tree_scores, siteaug.runtime.workflow": (("torch_geometric", "imblearn", "skops"), ("sklearn",)),
        "siteaug.inputs.demo, siteaug.evaluation.comparison, siteaug.evaluation.report, siteaug.evaluation.stage_timing, "
        "siteaug.runtime.provenance, siteaug.runtime.tables, siteaug.runtime.workflow": (("torch", "sklearn"), ()),
        "siteaug.generative.variants, siteaug.generative.quality, siteaug.arms.classifier": (("imblearn", "sklearn"), ()),
        # what train_classifier imports before it starts its seeds' processes, whose start then overlaps its imports
        "siteaug.arms.registry, siteaug.arms.seed_processes, siteaug.runtime.workflow": (("torch", "sklearn"), ()),
    }
    for modules, (absent, present) in jobs.items():
        code = f"import sys, {modules}; print(*sorted(m for m in {absent + present!r} if m in sys.modules))"
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        assert result.stdout.split() == sorted(present), f"{modules}: {result.stdout}"
