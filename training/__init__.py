"""Training: from a product catalog to a gated, registered MLflow model.

Importing this package does no work; `training.cli` is the command line, `training.run.train` the
entry point for Python callers.
"""
