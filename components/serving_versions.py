"""The version numbers of a serving dir, as a model server sees them.

A local folder is listed without TFX, so that predict.py's TFLite engine finds the newest version
without loading TensorFlow; an object store's (gs://...) through TFX's file system.
"""
import os
from typing import List


def model_versions(serving_dir: str) -> List[int]:
  """The version numbers a model server would load from ``serving_dir``, ascending."""
  if '://' in serving_dir:
    from tfx.dsl.io import fileio  # pylint: disable=g-import-not-at-top
    isdir, listdir = fileio.isdir, fileio.listdir
  else:
    isdir, listdir = os.path.isdir, os.listdir
  if not isdir(serving_dir):
    return []
  return sorted(int(name.rstrip('/')) for name in listdir(serving_dir)
                if name.rstrip('/').isdigit())
