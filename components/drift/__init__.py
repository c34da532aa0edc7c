"""Drift, in one package: the TFDV comparison of pixel statistics and its gate, the embedding
drift test (MMD) and its gate, and the checks and HTML report of validate.py on new data."""
