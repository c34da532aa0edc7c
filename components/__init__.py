"""Custom TFX pieces of the cats-vs-dogs pipeline.

TFT and TFMA 1.16 expect Keras 2 (tf-keras); TensorFlow 2.16 picks Keras 3 unless told otherwise, so
every entry point that imports this package gets the legacy switch before TensorFlow reads it.
"""
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
