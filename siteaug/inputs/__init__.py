"""Inputs: the label FASTA and PDB readers, the demo dataset, sequence identity, the protein split (rule prepare) and the
datasets sheet."""
