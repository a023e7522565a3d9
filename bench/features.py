"""Wall time of the features stage on real data, and the DSSP / SASA tool comparison behind the choices made.

    python bench/features.py [--threads 2] [--groups sequence structure]     # DNA-573: 569 PDBs -> feature tables
    python bench/features.py --dataset ppi335                                # PPI-335 from the precomputed .npy groups
    python bench/features.py --compare-dssp 60                               # pydssp vs mkdssp on 60 PDBs
    python bench/features.py --compare-sasa 60                               # freesasa vs Bio.PDB.SASA on 60 PDBs

Reads ../shared/datasets/ (relative to the repository root); nothing is written except with --out.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siteaug.features.residues import build_feature_tables  # noqa: E402
from siteaug.runtime.io import read_label_fasta  # noqa: E402
from siteaug.inputs.pdb import chain_from_id, read_chain_atoms  # noqa: E402
from siteaug.inputs.prepare import protein_table  # noqa: E402
from siteaug.features.structure import residue_sasa, secondary_structure  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
DNA = DATA / "graphsite_dna"
PPI = DATA / "graphppis_ppi"


def dna_proteins():
    records = read_label_fasta(DNA / "DNA_Train_573.fa")
    paths = [str(DNA / "pdb" / f"{r.protein_id}.pdb") if (DNA / "pdb" / f"{r.protein_id}.pdb").is_file() else ""
             for r in records]
    return protein_table(records, paths, ["train"] * len(records), "labels")


def ppi_proteins():
    records = read_label_fasta(PPI / "Train_335.fa")
    return protein_table(records, [""] * len(records), ["train"] * len(records), "labels")


def time_features(args) -> None:
    if args.dataset == "dna573":
        proteins = dna_proteins()
        kwargs = dict(groups=args.groups or ["sequence", "structure"])
    else:
        proteins = ppi_proteins()
        groups = {g: str(PPI / "features" / g) for g in ("pssm", "hmm", "dssp")}
        kwargs = dict(groups=args.groups or ["sequence", *groups], precomputed=groups,
                      distance_maps=str(PPI / "features" / "distance_map"))
    start = time.perf_counter()
    residues, edges = build_feature_tables(proteins, (8.0, 12.0), 10.0, threads=args.threads, **kwargs)
    seconds = time.perf_counter() - start
    n_features = sum(c.startswith("f_") for c in residues.columns)
    print(f"{args.dataset}: {len(proteins)} proteins, {len(residues)} residues, {n_features} features, "
          f"{len(edges)} edges, groups {kwargs['groups']}, {args.threads} worker(s): {seconds:.1f} s")


def _pdbs(n: int) -> list[Path]:
    paths = sorted((DNA / "pdb").glob("*.pdb"))
    return paths[:: max(1, len(paths) // n)][:n]


def _mkdssp_states(path: Path, workdir: Path) -> tuple[str, float]:
    """mkdssp 8-state string reduced to H/E/C, and its wall time. mkdssp 4 needs a HEADER (and CRYST1) line."""
    header = ("HEADER    DNA BINDING PROTEIN                     01-JAN-00   XXXX              \n"
              "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1          \n")
    source, out = workdir / "in.pdb", workdir / "out.dssp"
    source.write_text(header + path.read_text())
    start = time.perf_counter()
    subprocess.run(["mkdssp", "--output-format", "dssp", str(source), str(out)], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    lines = out.read_text().splitlines()
    body = lines[next(i for i, ln in enumerate(lines) if ln.startswith("  #  RESIDUE")) + 1:]
    states = "".join(ln[16] for ln in body if ln[13] != "!")  # '!' marks a chain break, not a residue
    return "".join("H" if s in "HGI" else "E" if s in "EB" else "C" for s in states), seconds


def compare_dssp(n: int) -> None:
    if shutil.which("mkdssp") is None:
        sys.exit("mkdssp not found (Debian: apt-get install dssp)")
    agree = total = 0
    t_py = t_mk = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for path in _pdbs(n):
            chain = read_chain_atoms(path, chain_from_id(path.stem))
            start = time.perf_counter()
            onehot = secondary_structure(chain.backbone, chain.sequence)
            t_py += time.perf_counter() - start
            ours = "".join("HEC"[k] for k in onehot.argmax(1))
            theirs, seconds = _mkdssp_states(path, Path(tmp))
            t_mk += seconds
            if len(theirs) != len(ours):
                print(f"{path.name}: mkdssp gave {len(theirs)} residues, the PDB has {len(ours)}; skipped")
                continue
            agree += sum(a == b for a, b in zip(ours, theirs))
            total += len(ours)
    print(f"DSSP on {n} PDBs, {total} residues: 3-state agreement pydssp vs mkdssp {agree / total:.3f}; "
          f"pydssp {t_py:.2f} s (in process), mkdssp {t_mk:.2f} s (subprocess, file in and out)")


def compare_sasa(n: int) -> None:
    try:
        from Bio.PDB import PDBParser
        from Bio.PDB.SASA import ShrakeRupley
    except ImportError:
        sys.exit("Biopython is not a dependency; install it to run this comparison")
    t_free = t_bio = 0.0
    ours_all, theirs_all = [], []
    for path in _pdbs(n):
        chain = read_chain_atoms(path, chain_from_id(path.stem))
        start = time.perf_counter()
        ours = residue_sasa(chain)
        t_free += time.perf_counter() - start
        structure = PDBParser(QUIET=True).get_structure(path.stem, path)
        start = time.perf_counter()
        ShrakeRupley(n_points=100).compute(structure[0], level="R")
        t_bio += time.perf_counter() - start
        theirs = np.array([res.sasa for res in structure[0][chain.chain]])
        ours_all.append(ours)
        theirs_all.append(theirs)
    ours, theirs = np.concatenate(ours_all), np.concatenate(theirs_all)
    r = np.corrcoef(ours, theirs)[0, 1]
    print(f"SASA on {n} PDBs, {len(ours)} residues: Pearson r {r:.4f}, mean |diff| {np.abs(ours - theirs).mean():.2f} Å²; "
          f"freesasa {t_free:.2f} s, Bio.PDB.SASA.ShrakeRupley {t_bio:.2f} s (compute only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["dna573", "ppi335"], default="dna573")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--groups", nargs="+")
    parser.add_argument("--compare-dssp", type=int, metavar="N")
    parser.add_argument("--compare-sasa", type=int, metavar="N")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not DNA.is_dir():
        sys.exit(f"real data not found at {DATA}")
    if args.compare_dssp:
        compare_dssp(args.compare_dssp)
    elif args.compare_sasa:
        compare_sasa(args.compare_sasa)
    else:
        time_features(args)


if __name__ == "__main__":
    main()
