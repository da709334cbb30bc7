"""HTTP serving for the product classifier: FastAPI routes over a framework-free prediction core."""
