"""LabelBalance: per-split class counts from StatisticsGen, and a gate on the max/min class ratio.

TFDV has no class-balance check, so this small component reads the statistics that StatisticsGen
already computed (the rank histogram of the class-name feature) instead of reading the data again.
"""
import json
import os
from typing import Dict

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

COUNTS_FILE = 'label_counts.json'


class LabelBalanceReport(Artifact):
  """Class counts per split (``label_counts.json``) and the worst max/min ratio."""
  # Kubeflow V2 needs '<module>.<Class>' and imports the class by it in the containers; the
  # ``components`` package re-exports it.
  TYPE_NAME = 'components.LabelBalanceReport'


class LabelImbalanceError(ValueError):
  """The classes are more unbalanced than the configured bound."""


def class_counts(stats: statistics_pb2.DatasetFeatureStatistics) -> Dict[str, int]:
  """{class name: count} from the rank histogram of the class-name feature."""
  for feature in stats.features:
    if feature.path.step == [features.LABEL_NAME_KEY]:
      histogram = feature.string_stats.rank_histogram
      return {bucket.label: int(bucket.sample_count) for bucket in histogram.buckets}
  raise ValueError(f'statistics have no {features.LABEL_NAME_KEY!r} feature')


def imbalance_ratio(counts: Dict[str, int]) -> float:
  return max(counts.values()) / max(min(counts.values()), 1)


@component
def LabelBalance(  # pylint: disable=invalid-name
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    report: OutputArtifact[LabelBalanceReport],
    max_class_ratio: Parameter[float],
    gated_splits: Parameter[str] = 'train',
) -> None:
  """Writes the class counts of every split; fails when a gated split's max/min ratio is too high.

  Only the training split is gated by default: eval and test are hash-split samples of
  ``validation/`` whose small class counts vary by chance; their imbalance is logged as a warning.
  """
  counts = {}
  for split in artifact_utils.decode_split_names(statistics.split_names):
    stats = stats_artifact_utils.load_statistics(statistics, split).proto()
    counts[split] = class_counts(stats.datasets[0])
  ratios = {split: imbalance_ratio(c) for split, c in counts.items()}
  # TFX's fileio, not open(): on Kubeflow the artifact URI is a gs:// path.
  with fileio.open(os.path.join(report.uri, COUNTS_FILE), 'w') as f:
    json.dump({'counts': counts, 'ratios': ratios, 'max_class_ratio': max_class_ratio}, f, indent=1)
  report.set_string_custom_property('counts', json.dumps(counts, sort_keys=True))
  report.set_float_custom_property('worst_ratio', max(ratios.values()))
  logging.info('Class counts per split: %s', counts)
  gated = set(gated_splits.split(','))
  over = {split: round(r, 2) for split, r in ratios.items() if r > max_class_ratio}
  for split in sorted(set(over) - gated):
    logging.warning('split %r is unbalanced (max/min %.2f > %s): %s', split, over[split],
                    max_class_ratio, counts[split])
  bad = {split: r for split, r in over.items() if split in gated}
  if bad:
    raise LabelImbalanceError(
        f'classes are unbalanced: max/min count ratio {bad} exceeds {max_class_ratio} '
        f'(counts {counts}); add images to the small classes or raise --max-class-ratio.')
