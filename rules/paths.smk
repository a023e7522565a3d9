import os

# Every output lies under output.directory (default results/); a relative one is relative to the working directory
# (--directory), like the input paths. A datasets sheet puts each dataset's outputs in a folder of its own below it.
OUTPUT_DIR = os.path.normpath(config["output"]["directory"])


def out(path):
    """``path`` (a pattern relative to the output folder, wildcards allowed) under output.directory."""
    return os.path.normpath(os.path.join(OUTPUT_DIR, path))
