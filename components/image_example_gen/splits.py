"""Which split a file goes to: by its folder and, inside a folder, by a hash of its path.

* ``train/``                -> ``train``
* ``validation/``           -> ``test`` for a ``test_fraction`` of the files, ``eval`` for the rest
* class folders only        -> ``train``/``eval``/``test`` by the weights ``split_ratios``

The hash is of the path below the split folder, so the same file lands in the same split on any
machine, run after run.
"""
import hashlib
from typing import Any, Dict

from components.modules.features import SPLIT_NAMES

TRAIN, EVAL, TEST = SPLIT_NAMES


def hash_fraction(key: str) -> float:
  """A stable number in [0, 1) for ``key``, the same on every machine and Python version."""
  digest = hashlib.sha256(key.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0**64


def assign_split(relative_path: str, split_folder: str, config: Dict[str, Any]) -> str:
  """Output split of the file at ``relative_path`` (relative to the root) in ``split_folder``."""
  if split_folder == config['train_folder']:
    return TRAIN
  # Hash the path below the split folder so the split does not depend on the folder's name.
  key = relative_path[len(split_folder) + 1:] if split_folder else relative_path
  fraction = hash_fraction(key)
  if split_folder:
    return TEST if fraction < config['test_fraction'] else EVAL
  total = sum(config['split_ratios'].values())
  upper = 0.0
  for split, ratio in config['split_ratios'].items():
    upper += ratio / total
    if fraction < upper:
      return split
  return split
