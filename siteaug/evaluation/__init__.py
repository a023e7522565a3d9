"""Evaluation and report: per-residue metrics and thresholds, bootstrap statistics, generation quality
(sample_quality), the feature-group ablation and the report."""
