# this checkout's: Snakemake puts the Snakefile's folder first on sys.path
from siteaug.runtime.provenance import checksums

# Every input the run reads, config key -> path (None when unset). The demo's files are outputs of make_demo, which
# Snakemake tracks itself; the user's files get content checksums (siteaug.runtime.provenance) in the params of the
# rules that read them, so a changed path or file content reruns those rules and everything downstream.
INPUT_PATHS = {
    "input.labels": label_file(),
    "input.structures": structure_dir(),
    "input.external_test_labels": config["input"]["external_test_labels"],
    "input.external_test_structures": config["input"]["external_test_structures"],
    **{f"features.precomputed.{name}": folder for name, folder in config["features"]["precomputed"].items()},
    "features.distance_maps": config["features"]["distance_maps"],
}
DEMO_INPUTS = ("input.labels", "input.structures") if config["input"]["source"] == "demo" else ()
# A missing input is one line naming its config key (stop_on), before any job.
USER_INPUTS = config_checks.stop_on(
    checksums, {key: path for key, path in INPUT_PATHS.items() if key not in DEMO_INPUTS}
)


rule prepare:
    input:
        unpack(prepare_inputs),
    output:
        out("data/proteins.parquet"),
    log:
        out("logs/prepare.log"),
    benchmark:
        out("benchmarks/prepare.tsv")
    conda:
        ENV
    params:
        validation=config["split"]["validation"],
        test=config["split"]["test"],
        seed=config["seed"],
        missing_structure=config["input"]["missing_structure"],
        unknown_residue=config["input"]["unknown_residue"],
        identity_threshold=config["split"]["identity_threshold"],
        external_test_overlap=config["input"]["external_test_overlap"],
        inputs={k: v for k, v in USER_INPUTS.items() if k.startswith("input.")},
    script:
        "../workflow_scripts/prepare.py"
