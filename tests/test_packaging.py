"""requirements.txt, envs/siteaug.yaml and pyproject.toml describe the same installation."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata

import tomllib
import yaml
from packaging.requirements import Requirement

from helpers import REPO

# conda-forge names of PyPI distributions
CONDA_NAMES = {"pytorch": "torch", "pytorch_geometric": "torch-geometric", "matplotlib-base": "matplotlib"}
# In requirements.txt (the development environment) but not needed inside a rule's conda environment.
NOT_IN_RULE_ENV = {"snakemake", "pygments", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep",
                   "pytest", "ruff", "snakefmt"}


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[_name(name)] = version
    return pins


def conda_env_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs/siteaug.yaml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",) and not d.startswith("python=")]
    specs += next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for spec in specs:
        name, _, version = spec.partition("==")
        assert version, f"envs/siteaug.yaml: {spec!r} is not pinned with =="
        pins[_name(CONDA_NAMES.get(name, name))] = version
    return pins


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_conda_env_pins_the_versions_of_requirements_txt():
    wanted = {name: version for name, version in requirement_pins().items() if name not in NOT_IN_RULE_ENV}
    assert conda_env_pins() == wanted


def test_pyproject_ranges_admit_the_pinned_versions():
    pins = requirement_pins()
    project = pyproject()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["workflow"]]:
        requirement = Requirement(spec)
        name = _name(requirement.name)
        assert name in pins, f"pyproject.toml: {name} is not pinned in requirements.txt"
        assert requirement.specifier.contains(pins[name]), f"pyproject.toml: {spec} excludes the pinned {pins[name]}"
    workflow = {_name(Requirement(s).name): Requirement(s) for s in project["optional-dependencies"]["workflow"]}
    assert "reports" in workflow["snakemake"].extras and {"pygments", "snakemake-executor-plugin-slurm"} <= set(workflow)


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in [*(REPO / "siteaug").rglob("*.py"), *(REPO / "workflow_scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"siteaug", "_checkout", "__future__"}


def test_every_third_party_import_is_a_declared_dependency():
    """Would have caught skops (the gbdt arm's model files) missing from pyproject.toml."""
    declared = {_name(Requirement(spec).name) for spec in pyproject()["dependencies"]}
    distributions = metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        providers = {_name(d) for d in distributions.get(module, [module])}
        if not providers & declared:
            missing[module] = sorted(providers)
    assert missing == {}


def test_pip_finds_every_dependency_of_the_workflow_extra_installed(tmp_path):
    """`pip install ".[workflow]"` resolves with nothing to fetch in an environment made from requirements.txt.

    ``--no-index`` forbids downloads, so any declared dependency (or extra) that requirements.txt does not provide at a
    version the ranges admit makes the resolution fail.
    """
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(REPO / "siteaug", tmp_path / "siteaug", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-build-isolation", "--no-index", "--quiet",
         "--report", "-", ".[workflow]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [item["metadata"]["name"] for item in json.loads(result.stdout)["install"]] == ["siteaug"]


def test_the_wheel_holds_every_module_of_every_stage_folder(tmp_path):
    """pyproject's packages.find picks up the stage subpackages (siteaug/inputs, features, ...), not only siteaug/."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copytree(REPO / "siteaug", source / "siteaug", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
                    "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("siteaug-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = {name for name in archive.namelist() if name.startswith("siteaug/") and name.endswith(".py")}
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "siteaug").rglob("*.py")}
    assert any("/" in m.removeprefix("siteaug/") for m in modules)  # the stage folders exist
    assert packaged == modules
