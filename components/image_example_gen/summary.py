"""The ExampleGen's summary of a run: images per split and class, and every file skipped and why.

Written as ``image_summary.json`` into the Examples artifact; ``check_summary`` fails the run when
too many files were skipped or a split is empty.
"""
import collections
import json
from typing import Any, Dict, List

import apache_beam as beam
import tensorflow as tf

from components.image_example_gen import layout as layout_lib
from components.modules.features import SPLIT_NAMES
from components.image_example_gen.images_to_examples import SKIPPED, FileOutcome

SUMMARY_FILE = 'image_summary.json'
SPLIT_ORDER = list(SPLIT_NAMES)


class ImageDataError(RuntimeError):
  """The images that were read cannot make a usable data set; the message says why."""


class SummaryFn(beam.CombineFn):
  """Counts per split and class, lists every skipped file with its reason, and the ignored ones;
  ``sources`` says which folder fed which split (splits.split_sources)."""

  def __init__(self, ignored_files: List[str], sources: Dict[str, str]):
    super().__init__()
    self._ignored_files = sorted(ignored_files)
    self._sources = dict(sources)

  def create_accumulator(self):
    return collections.Counter(), []

  def add_input(self, accumulator, outcome: FileOutcome):
    counts, skipped = accumulator
    counts[(outcome.split, outcome.class_name)] += 1
    if outcome.split == SKIPPED:
      skipped.append({'path': outcome.relative_path, 'reason': outcome.reason})
    return accumulator

  def merge_accumulators(self, accumulators):
    counts, skipped = collections.Counter(), []
    for c, s in accumulators:
      counts.update(c)
      skipped.extend(s)
    return counts, skipped

  def extract_output(self, accumulator) -> Dict[str, Any]:
    counts, skipped = accumulator
    per_split = collections.defaultdict(dict)
    for (split, class_name), n in sorted(counts.items()):
      per_split[split][class_name] = n
    used = sum(n for (split, _), n in counts.items() if split != SKIPPED)
    return {
        'files_seen': used + len(skipped),
        'images_used': used,
        'files_skipped': len(skipped),
        'counts': {split: per_split[split] for split in sorted(per_split) if split != SKIPPED},
        'sources': self._sources,
        'skipped': sorted(skipped, key=lambda s: s['path']),
        'ignored': self._ignored_files,
    }


def write_json(value: Dict[str, Any], path: str) -> None:
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(value, f, indent=1, sort_keys=True)


def describe_splits(summary: Dict[str, Any]) -> str:
  """'train 2000 from train/, eval 776 from validation/ (hash, 80 %), test 224 from ...'."""
  sources = summary.get('sources', {})
  return ', '.join(
      f"{split} {sum(summary['counts'].get(split, {}).values())}"
      + (f' from {sources[split]}' if split in sources else '')
      for split in sorted(sources or summary['counts'], key=SPLIT_ORDER.index))


def check_summary(summary: Dict[str, Any], split_names: List[str], max_skipped_fraction: float,
                  summary_path: str, data_root: str) -> None:
  """Fails with a readable message when no file was an image, too many files were skipped or a
  split is empty."""
  seen = summary['files_seen']
  if not summary['images_used']:
    raise layout_lib.NoImagesError(
        f"data root {data_root!r} yields no images: {seen} file(s) found, "
        f"{summary['files_skipped']} of them not decodable images, or too large (listed in "
        f'{summary_path}).')
  if seen and summary['files_skipped'] / seen > max_skipped_fraction:
    examples = ', '.join(f"{s['path']} ({s['reason']})" for s in summary['skipped'][:5])
    raise ImageDataError(
        f"{summary['files_skipped']} of {seen} files are not usable images "
        f"({summary['files_skipped'] / seen:.1%} > the allowed {max_skipped_fraction:.1%}), "
        f'e.g. {examples}; the full list is in {summary_path}. Remove or fix them, or raise '
        '--max-skipped-fraction.')
  empty = [split for split in split_names if not summary['counts'].get(split)]
  if empty:
    raise ImageDataError(f'split(s) {empty} received no images (counts: {summary["counts"]}); '
                         'add images or change --test-fraction / the split ratios.')
