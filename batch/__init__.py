"""Batch scoring: classify a whole catalog with a registered model, on one machine or on Spark."""
