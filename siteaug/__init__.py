"""siteaug: diffusion augmentation of protein binding-site residues (library behind the Snakemake workflow)."""

__version__ = "0.1.0"
