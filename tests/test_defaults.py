"""The library's defaults are the schema's (config/schema.yaml is the source of truth for every default)."""
from __future__ import annotations

import inspect
from dataclasses import MISSING, fields

import pytest
import yaml

from helpers import REPO
from siteaug.arms import classifier, graph_transformer, reference_models
from siteaug.arms.registry import MLP_ARM_SETTINGS
from siteaug.evaluation import sample_quality
from siteaug.features import residues as features
from siteaug.generative import diffusion, generation
from siteaug.runtime import device


def schema_defaults(properties: dict) -> dict:
    """{key: default} of a schema ``properties`` mapping, nested objects as nested dicts."""
    out = {}
    for key, spec in properties.items():
        if spec.get("type") == "object" and "properties" in spec:
            out[key] = schema_defaults(spec["properties"])
        elif "default" in spec:
            out[key] = spec["default"]
    return out


SCHEMA = schema_defaults(yaml.safe_load((REPO / "config/schema.yaml").read_text())["properties"])


def plain(value):
    return list(value) if isinstance(value, tuple) else value


def dataclass_defaults(cls) -> dict:
    return {f.name: plain(f.default) for f in fields(cls) if f.default is not MISSING}


@pytest.mark.parametrize("cls, keys, section", [
    (diffusion.DiffusionConfig, diffusion.SETTING_KEYS, SCHEMA["diffusion"]),
    (graph_transformer.GraphTransformerConfig, graph_transformer.SETTING_KEYS, SCHEMA["classifier"]["graph_transformer"]),
    (reference_models.GNNConfig, reference_models.GNN_SETTING_KEYS, SCHEMA["classifier"]["gnn"]),
    (classifier.MLPConfig, MLP_ARM_SETTINGS, SCHEMA["classifier"]),
    (classifier.MLPConfig, classifier.MLP_SETTING_KEYS, SCHEMA["filter"]["critic"]),
], ids=["diffusion", "graph_transformer", "gnn", "mlp", "critic"])
def test_config_dataclass_defaults_are_the_schema_defaults(cls, keys, section):
    defaults = dataclass_defaults(cls)
    assert keys and set(keys) <= set(section)  # every key the config builder reads is a schema key
    assert {k: defaults[k] for k in keys} == {k: section[k] for k in keys}


def parameter_defaults(function, names) -> dict:
    signature = inspect.signature(function)
    return {name: plain(signature.parameters[name].default) for name in names}


@pytest.mark.parametrize("function, parameters", [
    # parameter name -> schema key path
    (generation.generate_candidates, {"chunk_size": "generation.chunk_size", "precision": "generation.precision",
                                      "sampler": "generation.sampler", "sampler_steps": "generation.sampler_steps",
                                      "cuda_graph": "generation.cuda_graph", "compile": "generation.compile"}),
    (device.gpu_slot, {"configured": "gpu.devices", "lock_dir": "gpu.lock_dir"}),
    (features.build_feature_tables, {"radii": "features.neighbour_radii", "graph_radius": "features.graph_radius",
                                     "groups": "features.groups", "distance_maps": "features.distance_maps",
                                     "invalid_protein": "features.invalid_protein"}),
    (sample_quality.sample_quality, {"k": "quality.knn_k", "max_rows": "quality.max_rows", "c2st_folds": "quality.c2st_folds"}),
    (sample_quality.c2st_auc, {"folds": "quality.c2st_folds"}),
    (features.feature_names, {"radii": "features.neighbour_radii", "groups": "features.groups"}),
    (features.base_feature_names, {"radii": "features.neighbour_radii", "groups": "features.groups"}),
    (features.protein_features, {"radii": "features.neighbour_radii", "graph_radius": "features.graph_radius",
                                 "groups": "features.groups"}),
], ids=["generate_candidates", "gpu_slot", "build_feature_tables", "sample_quality", "c2st_auc", "feature_names",
        "base_feature_names", "protein_features"])
def test_function_defaults_are_the_schema_defaults(function, parameters):
    def schema_value(path):
        value = SCHEMA
        for key in path.split("."):
            value = value[key]
        return value

    assert parameter_defaults(function, parameters) == {name: schema_value(path) for name, path in parameters.items()}


def test_the_lock_directory_default_is_written_once():
    assert device.DEFAULT_LOCK_DIR == SCHEMA["gpu"]["lock_dir"]
    assert (REPO / "siteaug/runtime/device.py").read_text().count(SCHEMA["gpu"]["lock_dir"]) == 1


def test_the_feature_settings_default_to_the_schema_and_the_radii_are_written_once():
    settings = dataclass_defaults(features.FeatureSettings)
    section = SCHEMA["features"]
    assert {"radii": settings["radii"], "graph_radius": settings["graph_radius"], "groups": settings["groups"]} == \
        {"radii": section["neighbour_radii"], "graph_radius": section["graph_radius"], "groups": section["groups"]}
    source = (REPO / "siteaug/features/residues.py").read_text()
    assert source.count(repr(tuple(section["neighbour_radii"]))) == 1  # DEFAULT_RADII; every function refers to it

