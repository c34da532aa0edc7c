"""Benchmarks: each script writes benchmarks/results/<name>.{json,md} (benchmarks/common.py)."""
import bootstrap  # pylint: disable=unused-import  # the Keras switch, before TensorFlow
