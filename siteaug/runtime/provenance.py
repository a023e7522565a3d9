"""What a result was made from: content checksums of the input files and folders, and the software and machine.

The checksums are part of the ``prepare`` and ``features`` rules' ``params``, so Snakemake reruns them (and everything
downstream) when an input path or any input file's content changes: editing a label file, replacing a PDB file in
place (a folder's modification time does not change then) or switching ``input.source``. They are computed every
time the Snakefile is read, so they must stay cheap: SHA-256 of every file, ~0.1 s for the 569 PDB files (99 MB) of
DNA-573 with the files in the page cache.
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.util
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from siteaug.runtime.device import listed_cards, visible_devices
from siteaug.runtime.io import InputError

# Distributions whose versions the report lists (the ones that change numbers or read/write the files).
PACKAGES = ("siteaug", "snakemake", "torch", "torch_geometric", "numpy", "pandas", "pyarrow", "scikit-learn", "scipy",
            "imbalanced-learn", "skops", "freesasa", "pydssp", "matplotlib")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checksum(path: str | os.PathLike, key: str) -> dict:
    """``{"path", "sha256", "files", "bytes"}`` of a file, or of a folder's files (recursively, by relative path).

    A folder's checksum is the SHA-256 of the sorted lines ``<relative path>\\t<file sha256>``, so renaming, adding,
    removing or editing any file changes it, and the order the filesystem lists them in does not. ``key`` names the
    config key in the error when ``path`` does not exist.
    """
    p = Path(path)
    if p.is_file():
        return {"path": str(path), "sha256": _file_sha256(p), "files": 1, "bytes": p.stat().st_size}
    if not p.is_dir():
        raise InputError(f"config {key}: {path}: no such file or folder")
    files = sorted(f for f in p.rglob("*") if f.is_file())
    lines = "".join(f"{f.relative_to(p).as_posix()}\t{_file_sha256(f)}\n" for f in files)
    return {"path": str(path), "sha256": hashlib.sha256(lines.encode()).hexdigest(), "files": len(files),
            "bytes": sum(f.stat().st_size for f in files)}


def checksums(paths: dict[str, str | None]) -> dict[str, dict]:
    """Config key -> :func:`checksum` for every key whose path is set (None and "" are left out)."""
    return {key: checksum(path, key) for key, path in paths.items() if path}


def package_versions(names=PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(folder: str | os.PathLike) -> str:
    """The checkout's commit; when the work tree differs, " (uncommitted changes; work tree T)" with T git's tree id of
    the files as they are, which equals ``git rev-parse C^{tree}`` of the commit C holding exactly those files. A run
    from a copy of an uncommitted tree (a GPU machine's copy, say) can so still be matched to the commit that holds it.
    Says so when not a checkout."""
    def git(*args, env=None):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, env=env)

    try:
        head = git("rev-parse", "HEAD")
    except (FileNotFoundError, subprocess.SubprocessError):
        return "unknown (git not found)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    if not git("status", "--porcelain").stdout.strip():
        return head.stdout.strip()
    tree = None
    with tempfile.TemporaryDirectory() as tmp:
        # A scratch index: the checkout's own index and work tree stay as they are (git add stores blobs, nothing else).
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        try:
            if git("add", "-A", env=env).returncode == 0:
                written = git("write-tree", env=env)
                tree = written.stdout.strip() if written.returncode == 0 else None
        except subprocess.SubprocessError:
            pass
    return head.stdout.strip() + (f" (uncommitted changes; work tree {tree})" if tree else " (uncommitted changes)")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_build() -> dict:
    """The installed torch's ``version`` module as a dict (``cuda``, ``hip``: None in a CPU build), read from its file
    without importing torch, which takes the report job 2-3 s on a GPU machine; {} without torch."""
    spec = importlib.util.find_spec("torch")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return {}
    version_file = Path(list(spec.submodule_search_locations)[0]) / "version.py"
    namespace: dict = {}
    exec(compile(version_file.read_text(), str(version_file), "exec"), namespace)  # plain assignments (typing only)
    return {key: namespace.get(key) for key in ("__version__", "cuda", "hip")}


def gpu_names(environ: dict | None = None) -> str:
    """The cards the run's CUDA processes could use: the NVIDIA cards nvidia-smi lists, only those CUDA_VISIBLE_DEVICES
    names (by index or UUID) when set; "none (CPU only)" without any, or when the installed torch is a CPU build."""
    environ = os.environ if environ is None else environ
    build = torch_build()
    if build.get("hip"):  # ROCm: nvidia-smi knows nothing of its cards; ask torch
        import torch

        count = torch.cuda.device_count()
        return ", ".join(torch.cuda.get_device_name(i) for i in range(count)) if count else "none (CPU only)"
    if not build.get("cuda"):
        return "none (CPU only)"
    cards = listed_cards()
    visible = visible_devices(environ)
    if visible is not None:
        cards = [card for entry in visible for card in cards if entry in (card["index"], card["uuid"])]
    return ", ".join(card["name"] for card in cards) or "none (CPU only)"


def machine_provenance(checkout: str | os.PathLike) -> dict:
    """Commit, date, host, CPU/GPU and package versions of the process that calls it."""
    return {
        "git_commit": git_commit(checkout),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "gpu": gpu_names(),
        "packages": package_versions(),
    }
