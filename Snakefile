# siteaug: diffusion augmentation of protein binding-site residues, from inputs to a metrics report.

import os

from snakemake.utils import min_version, validate

min_version("9.0")


# The defaults come from this checkout's config/ whatever the working directory (--directory, or the Snakefile run from
# elsewhere); relative input paths in the config are still relative to the working directory.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# snakemake --report: this description heads the page, and the report(...) outputs of the rules are its items.
report: "report/workflow.rst"


from siteaug.runtime import config_checks  # this checkout's: Snakemake puts the Snakefile's folder first on sys.path

config_checks.stop_on(config_checks.check_config_files, workflow.configfiles)
validate(config, "config/schema.yaml")


include: "rules/paths.smk"
include: "rules/mps.smk"


if config["datasets"]:

    include: "rules/datasets.smk"

else:

    include: "rules/pipeline.smk"


# Here, not in the included files: a rule defined in an included file never becomes the default target.
rule all:
    input:
        DEFAULT_TARGETS,
