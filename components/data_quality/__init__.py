"""Data quality that statistics cannot see: duplicates, leaks, label errors and outliers.

``checks`` works on what the pipeline computes once per image (``image_set.ImageSet``: content
hash, pooled features of the frozen pretrained base in a few augmented views) with numpy and
scikit-learn only: no TensorFlow, no second pass of the network. ``probe`` ranks the labels.
"""
