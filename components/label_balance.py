"""LabelBalance: per-split class counts from StatisticsGen; a warning when the training split is
unbalanced, a stop only where training cannot work.

TFDV has no class-balance check, so this small component reads the statistics that StatisticsGen
already computed (the rank histogram of the class-name feature) instead of reading the data again.
An unbalanced training split is handled, not refused: the Trainer weighs every class the same in
its loss (``--class-weights balanced``) and the Evaluator gates on balanced accuracy, so above
``warn_class_ratio`` (max/min images per class) the run warns and records the counts. It stops
when a class has fewer than ``min_class_images`` training images (too few to learn from or to be
weighted up without memorising them) or the ratio exceeds ``max_class_ratio``; each message says
the numbers and the fix.
"""
import json
import os
from typing import Dict, List

from absl import logging
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.modules import features

TRAIN = features.SPLIT_NAMES[0]

COUNTS_FILE = 'label_counts.json'


class LabelBalanceReport(Artifact):
  """Class counts per split (``label_counts.json``) and the worst max/min ratio."""
  # Kubeflow V2 needs '<module>.<Class>' and imports the class by it in the containers; the
  # ``components`` package re-exports it.
  TYPE_NAME = 'components.LabelBalanceReport'


class LabelImbalanceError(ValueError):
  """The training split cannot train a classifier of every class; the message says why."""


def class_counts(stats: statistics_pb2.DatasetFeatureStatistics) -> Dict[str, int]:
  """{class name: count} from the rank histogram of the class-name feature."""
  for feature in stats.features:
    if feature.path.step == [features.LABEL_NAME_KEY]:
      histogram = feature.string_stats.rank_histogram
      return {bucket.label: int(bucket.sample_count) for bucket in histogram.buckets}
  raise ValueError(f'statistics have no {features.LABEL_NAME_KEY!r} feature')


def imbalance_ratio(counts: Dict[str, int]) -> float:
  """Max/min images per class (a class with none counts as one image)."""
  return max(counts.values()) / max(min(counts.values()), 1)


def training_problems(counts: Dict[str, int], class_names: List[str], min_class_images: int,
                      max_class_ratio: float) -> List[str]:
  """What stops a run, in words: classes with too few training images, and too large a ratio."""
  counts = {name: counts.get(name, 0) for name in class_names}
  problems = []
  few = {name: n for name, n in sorted(counts.items()) if n < min_class_images}
  if few:
    problems.append(f'class(es) with fewer than {min_class_images} training images: {few}; add '
                    'images to them, remove those classes, or lower --min-class-images')
  ratio = imbalance_ratio(counts)
  if not few and ratio > max_class_ratio:
    largest, smallest = max(counts, key=counts.get), min(counts, key=counts.get)
    problems.append(
        f'the training split\'s largest class ({largest}, {counts[largest]} images) has {ratio:.1f}x '
        f'the images of its smallest ({smallest}, {counts[smallest]}), above --max-class-ratio '
        f'{max_class_ratio:g}; add images to the small classes, cap the large ones, or raise '
        '--max-class-ratio')
  return problems


@component
def LabelBalance(  # pylint: disable=invalid-name
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    report: OutputArtifact[LabelBalanceReport],
    class_names: Parameter[str],
    warn_class_ratio: Parameter[float],
    max_class_ratio: Parameter[float],
    min_class_images: Parameter[int],
) -> None:
  """Writes the class counts of every split; warns when a split is unbalanced; fails when the
  training split cannot train every class of ``class_names`` (a JSON list).

  Only the training split can fail the run: eval and test come from folders of their own or are
  hash-split samples whose small class counts vary by chance; their imbalance, and a class missing
  from them, are warnings.
  """
  names = json.loads(class_names)
  counts = {}
  for split in artifact_utils.decode_split_names(statistics.split_names):
    stats = stats_artifact_utils.load_statistics(statistics, split).proto()
    counts[split] = class_counts(stats.datasets[0])
  ratios = {split: imbalance_ratio({name: c.get(name, 0) for name in names})
            for split, c in counts.items()}
  train = counts.get(TRAIN, {})
  problems = training_problems(train, names, min_class_images, max_class_ratio)
  warnings = [f'split {split!r} is unbalanced: max/min images per class {ratio:.2f} > '
              f'{warn_class_ratio:g} ({counts[split]})' + (
                  '; the training loss weighs every class the same (--class-weights)'
                  if split == TRAIN else '')
              for split, ratio in sorted(ratios.items()) if ratio > warn_class_ratio]
  warnings += [f'split {split!r} has no images of {missing}: its metrics leave them out'
               for split, c in sorted(counts.items()) if split != TRAIN
               for missing in [[name for name in names if not c.get(name)]] if missing]
  # TFX's fileio, not open(): on Kubeflow the artifact URI is a gs:// path.
  with fileio.open(os.path.join(report.uri, COUNTS_FILE), 'w') as f:
    json.dump({'counts': counts, 'ratios': ratios, 'warnings': warnings, 'problems': problems,
               'warn_class_ratio': warn_class_ratio, 'max_class_ratio': max_class_ratio,
               'min_class_images': min_class_images}, f, indent=1)
  report.set_string_custom_property('counts', json.dumps(counts, sort_keys=True))
  report.set_float_custom_property('worst_ratio', max(ratios.values()))
  report.set_float_custom_property('train_ratio', ratios.get(TRAIN, 1.0))
  report.set_int_custom_property('warnings', len(warnings))
  logging.info('Class counts per split: %s', counts)
  for warning in warnings:
    logging.warning('LabelBalance: %s', warning)
  if problems:
    raise LabelImbalanceError('; '.join(problems) + f' (counts per split: {counts})')
