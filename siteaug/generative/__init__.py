"""The generative model and what it feeds: the column codec, the conditional diffusion model and its training, candidate
generation, the quality filter, the generation plan and the balanced training tables."""
