"""Runtime: what every stage shares: input validation and atomic output, table contracts, GPU choice, rule logging,
config checks, provenance and early stopping."""
