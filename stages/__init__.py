"""The neural-bigram pipeline: one module per DVC stage (see dvc.yaml)."""
