"""Config checks that the schema cannot express, run before any job, so a value the user can fix stops the run with one
line naming the key instead of a traceback after hours of training.

- :func:`check_config_files`: every config file is YAML with no key given twice (Snakemake keeps the last silently);
- :func:`check_config`: relations between keys, known from the config alone (the Snakefile calls it after validation);
- :func:`check_config_against_data`: what needs the protein table (the ``prepare`` rule calls it): neighbour counts
  against the training positives, and the memory of the candidate table.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from siteaug.arms.registry import lookup_arm
from siteaug.runtime.io import InputError
from siteaug.runtime.tables import feature_columns, train_rows

# Seeds are stored as 32-bit integers in the prediction tables (column "seed") and the classifier trains seeds
# seed, seed + 1, ..., so the last of them must fit.
SEED_LIMIT = 2**31 - 1


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice."""


def _mapping_without_duplicates(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise InputError(
                f"line {key_node.start_mark.line + 1}: key {key!r} given twice (first at line {seen[key]}); "
                "YAML would keep only the last value"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def check_config_files(paths) -> None:
    """Every file in ``paths`` parses as YAML and gives no key twice (InputError naming the file and line)."""
    for path in map(Path, paths):
        if not path.is_file():
            continue  # Snakemake itself reports a missing config file
        try:
            yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_UniqueKeyLoader)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None


def check_config(config: dict, sweep_arms: list[str]) -> None:
    """Relations between keys that the schema cannot state; InputError naming the key.

    ``sweep_arms``: the arm name of each ``classifier.ratio_sweep`` ratio, as the workflow names them (the Snakefile
    passes them in so that parsing the workflow does not import the classifier code and torch).
    """
    seeds = config["classifier"]["seeds"]
    if config["seed"] + seeds - 1 > SEED_LIMIT:
        raise InputError(
            f"config seed: {config['seed']} is too large: the classifier's seeds run to seed + classifier.seeds - 1 "
            f"= {config['seed'] + seeds - 1}, and seeds are stored as 32-bit integers (at most {SEED_LIMIT})"
        )
    if config["input"]["source"] == "files" and not config["input"]["labels"]:
        raise InputError("config input.labels: required when input.source is files (a 3-line label FASTA: >id, "
                         "sequence, 0/1 string)")
    demo = config["demo"]
    if config["input"]["source"] == "demo" and demo["min_length"] > demo["max_length"]:
        raise InputError(f"config demo.min_length: {demo['min_length']} is above demo.max_length {demo['max_length']}")
    radii = config["features"]["neighbour_radii"]
    if len({f"{r:g}" for r in radii}) != len(radii):
        raise InputError(f"config features.neighbour_radii: {radii} name the same columns twice (ca_count_r{radii[0]:g}); "
                         "use distinct radii")
    ratios = config["classifier"]["ratio_sweep"]
    target = config["balance"]["target_positive_ratio"]
    names: dict[str, float] = {}
    for ratio, name in zip(ratios, sweep_arms):
        if ratio > target:
            raise InputError(
                f"config classifier.ratio_sweep: {ratio:g} is above balance.target_positive_ratio {target:g}, for "
                "which the candidates are generated"
            )
        if name in names:
            raise InputError(
                f"config classifier.ratio_sweep: {names[name]!r} and {ratio!r} would both be arm {name}; use ratios "
                "that differ in their first 6 significant digits"
            )
        names[name] = ratio


def check_config_against_existing_results(config: dict, results: str | Path, inputs=()) -> None:
    """:func:`check_config_against_data` on the protein table of an earlier run, if there is one and no file in
    ``inputs`` (the label files) is newer, i.e. ``prepare`` will not run again and so would not check. The feature
    count comes from the feature table's schema; without one the memory estimate is left to ``prepare``."""
    from siteaug.runtime.io import parquet_columns, read_parquet

    proteins_path, residues_path = Path(results) / "data" / "proteins.parquet", Path(results) / "features" / "residues.parquet"
    if not proteins_path.is_file():
        return
    made = proteins_path.stat().st_mtime
    if any(Path(p).exists() and Path(p).stat().st_mtime > made for p in inputs if p):
        return  # stale: prepare runs again on the new inputs and checks them
    n_features = len(feature_columns(parquet_columns(residues_path))) if residues_path.is_file() else None
    check_config_against_data(read_parquet(proteins_path), config, n_features)


def check_config_against_data(proteins, config: dict, n_features: int | None, memory_bytes: int | None = None) -> None:
    """Checks that need the protein table (``prepare``): neighbour counts against the positives they run over, and the
    memory of the candidate table, estimated from the config and the data (``memory_bytes``: this machine's memory)."""
    import psutil

    from siteaug.generative.balance import positives_needed

    train = train_rows(proteins)
    n_pos = int(train["n_positives"].sum())
    n_neg = int(train["n_residues"].sum()) - n_pos
    val_pos = int(proteins.loc[proteins["split"] == "validation", "n_positives"].sum())
    arms = config["classifier"]["arms"]
    smote = [a for a in arms if lookup_arm(a).interpolates_positives]
    if smote and n_pos < 2:
        raise InputError(
            f"config classifier.arms: {', '.join(smote)} interpolate between training positives, and the training split "
            f"has {n_pos}; remove those arms or label more positives"
        )
    k = config["filter"]["knn_k"]
    if n_pos <= k:
        raise InputError(
            f"config filter.knn_k: {k} neighbours need more than {k} training positives, the training split has {n_pos}"
        )
    q = config["quality"]
    for what, count in (("training", n_pos), ("validation", val_pos)):
        if min(count, q["max_rows"]) <= q["knn_k"]:
            raise InputError(
                f"config quality.knn_k: {q['knn_k']} neighbours need more than {q['knn_k']} {what} positives "
                f"(at most quality.max_rows), the {what} split has {count}"
            )
        if min(count, q["max_rows"]) < q["c2st_folds"]:
            raise InputError(f"config quality.c2st_folds: {q['c2st_folds']} folds need as many {what} positives, "
                             f"the {what} split has {count}")
    ratio = config["balance"]["target_positive_ratio"]
    if positives_needed(n_pos, n_neg, ratio) == 0:
        raise InputError(
            f"config balance.target_positive_ratio: {ratio:g} is already reached by the training split "
            f"({n_pos / (n_pos + n_neg):.3f} positives), so there is nothing to generate; raise it"
        )
    if n_features is None:
        return
    candidates = config["generation"]["sample_multiplier"] * positives_needed(n_pos, n_neg, ratio)
    # float32 features; the diffusion_unfiltered and sample_quality jobs read every shard at once, and
    # concatenating them holds the table twice.
    needed = 2 * candidates * n_features * 4
    memory = psutil.virtual_memory().total if memory_bytes is None else memory_bytes
    if needed > memory:
        raise InputError(
            f"config generation.sample_multiplier: {config['generation']['sample_multiplier']} x "
            f"{positives_needed(n_pos, n_neg, ratio):,} synthetic positives needed = {candidates:,} candidates of "
            f"{n_features} features, about {_gib(needed)} to hold (twice, float32) against {_gib(memory)} of memory; "
            "lower generation.sample_multiplier or balance.target_positive_ratio"
        )


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n < 2**40 else f"{n / 2**40:.1f} TiB"


def expected_feature_count(config: dict, proteins) -> int:
    """Feature columns the features rule will write, from the config and the first protein's precomputed files."""
    from siteaug.features.residues import _group_width, feature_names

    f = config["features"]
    ids = [str(p) for p in proteins["protein_id"]]
    widths = {group: _group_width(folder, group, ids) for group, folder in f["precomputed"].items() if group in f["groups"]}
    return len(feature_names(tuple(f["neighbour_radii"]), tuple(f["groups"]), widths))


def stop_on(check, *args):
    """Run ``check(*args)`` and return what it returns; a config the user can fix (InputError) stops the run with one
    line naming the key, not a traceback. Called from the Snakefile before any job."""
    import sys

    try:
        return check(*args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
