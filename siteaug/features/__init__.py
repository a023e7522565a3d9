"""Features: per-residue feature tables (rule features), structure descriptors, precomputed groups and residue graphs."""
