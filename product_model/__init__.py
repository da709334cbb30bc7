"""The model's own code: what a saved model needs to predict, and nothing else.

Text cleaning (`text`), feature building (`features`), the compact forest (`forest`), the input
contract (`contract`) and the MLflow pyfunc wrapper (`pyfunc`). The whole package is copied into
every logged model (MLflow `code_paths`), so a registered model predicts wherever the serving
dependencies are installed, without `training`, `serving` or this project. It imports neither.
"""
