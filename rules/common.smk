SHARDS = list(range(config["generation"]["shards"]))
ARMS = config["classifier"]["arms"]
ENV = "../envs/siteaug.yaml"


wildcard_constraints:
    shard=r"\d+",
    arm="|".join(ARMS),


def label_file():
    if config["input"]["source"] == "demo":
        return "results/demo/labels.fa"
    if not config["input"]["labels"]:
        raise ValueError("config key input.labels is required when input.source is 'files'")
    return config["input"]["labels"]


def structure_dir():
    if config["input"]["source"] == "demo":
        return "results/demo/pdb"
    return config["input"]["structures"]


def prepare_inputs(wildcards):
    inputs = {"labels": label_file()}
    if structure_dir():
        inputs["structures"] = structure_dir()
    for key in ("external_test_labels", "external_test_structures"):
        if config["input"][key]:
            inputs[key] = config["input"][key]
    return inputs


def classifier_inputs(wildcards):
    inputs = {"residues": "results/features/residues.parquet"}
    if wildcards.arm == "diffusion":
        inputs["balanced"] = "results/balanced/train.parquet"
    return inputs
