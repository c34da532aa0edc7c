"""Data sets: the embedded synthetic sample (``data/sample``) and the tutorial's real archive."""
