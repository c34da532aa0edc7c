"""Which split a file goes to: by its folder and, inside a folder, by a hash of its path.

* ``train/``                -> ``train``; without ``validation/``, a share of it -> ``eval``
  (the train:eval weights of ``split_ratios``)
* ``validation/``           -> ``eval``; without ``test/``, a ``test_fraction`` of it -> ``test``
* ``test/``                 -> ``test``
* class folders only        -> ``train``/``eval``/``test`` by the weights ``split_ratios``

The hash is of the path below the split folder, so the same file lands in the same split on any
machine, run after run. ``split_sources`` says the same in words, for the run's output.
"""
import hashlib
from typing import Any, Dict, Mapping, Sequence

from components.image_example_gen.layout import TEST_FOLDER, TRAIN_FOLDER, VALIDATION_FOLDER
from components.modules.features import SPLIT_NAMES

TRAIN, EVAL, TEST = SPLIT_NAMES


def hash_fraction(key: str) -> float:
  """A stable number in [0, 1) for ``key``, the same on every machine and Python version."""
  digest = hashlib.sha256(key.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0**64


def _eval_share_of_train(split_ratios: Mapping[str, int]) -> float:
  return split_ratios[EVAL] / (split_ratios[TRAIN] + split_ratios[EVAL])


def assign_split(relative_path: str, split_folder: str, config: Dict[str, Any]) -> str:
  """Output split of the file at ``relative_path`` (relative to the root) in ``split_folder`` ('' for
  a root of class folders); ``config`` holds the layout's ``split_folders``, ``test_fraction`` and
  ``split_ratios`` (executor_config.executor_settings)."""
  # Hash the path below the split folder so the split does not depend on the folder's name.
  fraction = hash_fraction(relative_path[len(split_folder) + 1:] if split_folder else relative_path)
  ratios, folders = config['split_ratios'], config['split_folders']
  if not split_folder:
    total, upper = sum(ratios.values()), 0.0
    for split, ratio in ratios.items():
      upper += ratio / total
      if fraction < upper:
        return split
    return split
  if split_folder == TRAIN_FOLDER:
    if VALIDATION_FOLDER in folders:
      return TRAIN
    return EVAL if fraction < _eval_share_of_train(ratios) else TRAIN
  if split_folder == TEST_FOLDER:
    return TEST
  if TEST_FOLDER in folders:
    return EVAL
  return TEST if fraction < config['test_fraction'] else EVAL


def split_sources(split_folders: Sequence[str], test_fraction: float,
                  split_ratios: Mapping[str, int]) -> Dict[str, str]:
  """Where each split's images come from, in words: {'train': 'train/', 'eval': 'validation/
  (hash, 80 %)', 'test': 'validation/ (hash, 20 %)'} for the tutorial's layout."""
  if not split_folders:
    total = sum(split_ratios.values())
    return {split: f'the class folders (hash, {split_ratios[split] / total:.0%})'
            for split in SPLIT_NAMES}
  sources = {TRAIN: f'{TRAIN_FOLDER}/', EVAL: f'{VALIDATION_FOLDER}/', TEST: f'{TEST_FOLDER}/'}
  if VALIDATION_FOLDER not in split_folders:
    share = _eval_share_of_train(split_ratios)
    sources[TRAIN] = f'{TRAIN_FOLDER}/ (hash, {1 - share:.0%})'
    sources[EVAL] = f'{TRAIN_FOLDER}/ (hash, {share:.0%})'
  if TEST_FOLDER not in split_folders:
    sources[EVAL] = f'{VALIDATION_FOLDER}/ (hash, {1 - test_fraction:.0%})'
    sources[TEST] = f'{VALIDATION_FOLDER}/ (hash, {test_fraction:.0%})'
  return sources
