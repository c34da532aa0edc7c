"""DriftGate, which stops a run whose data drifted, and the baseline it is measured against.

TFX's DistributionValidator compares this run's statistics with a baseline's and records the
anomalies, but never stops a run. This module gives it
* a gate, DriftGate, that logs a per-feature report and fails the run on drift, upstream of
  Transform as LabelBalance is;
* its baseline: AcceptedStatistics republishes statistics that passed the gate, and the pipeline
  resolves the latest of them through MLMD (TFX's LatestArtifactStrategy, which Kubeflow V2
  compiles too).
"""
import dataclasses
import json
import os

from absl import logging
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.distribution_validator import executor as distribution_validator_executor
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types.artifact import Artifact
from tfx.utils import io_utils

from components.drift.drift_comparison import findings, format_report

REPORT_FILE = 'drift_report.json'
ACCEPTED_KEY = 'accepted'  # AcceptedStatistics' output


class DataDriftError(ValueError):
  """The new data differs from the baseline by more than the thresholds."""


# --- the baseline --------------------------------------------------------------------------------

@component
def AcceptedStatistics(  # pylint: disable=invalid-name
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    accepted: OutputArtifact[standard_artifacts.ExampleStatistics],
) -> None:
  """Republishes statistics that passed the drift check: the baseline of the next runs.

  It runs after DriftGate, so a batch stopped for drift never becomes the baseline and stays
  flagged when run again; its only input is the statistics, so unchanged data is served from the
  cache and the next run compares with the very same baseline (and is cached too).
  """
  accepted.split_names = statistics.split_names
  accepted.span = statistics.span
  for split in artifact_utils.decode_split_names(statistics.split_names):
    source = artifact_utils.get_split_uri([statistics], split)
    target = artifact_utils.get_split_uri([accepted], split)
    tf.io.gfile.makedirs(target)
    for name in tf.io.gfile.listdir(source):
      tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name), overwrite=True)


class LatestOrNoStatisticsStrategy(LatestArtifactStrategy):
  """TFX's LatestArtifactStrategy, except that a cold start (nothing to resolve yet) resolves to
  nothing instead of failing the resolver node, as LatestBlessedModelStrategy does."""

  def resolve_artifacts(self, store, input_dict):
    return super().resolve_artifacts(store, input_dict) or {key: [] for key in input_dict}


# --- the gate ------------------------------------------------------------------------------------

class DriftReport(Artifact):
  """The drift findings of a run (``drift_report.json``)."""
  # Kubeflow V2 imports the class by '<module>.<Class>'; the ``components`` package re-exports it.
  TYPE_NAME = 'components.DriftReport'


def load_split_pair_anomalies(anomalies: types.Artifact,
                              split_pair: str) -> anomalies_pb2.Anomalies:
  path = os.path.join(anomalies.uri, f'SplitPair-{split_pair}',
                      distribution_validator_executor.DEFAULT_FILE_NAME)
  return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))


@component
def DriftGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    report: OutputArtifact[DriftReport],
    on_drift: Parameter[str],
) -> None:
  """Reads the DistributionValidator's verdict, logs the report, and fails the run on drift when
  ``on_drift`` is 'fail' ('warn' only logs; PipelineConfig checks the value). A cold start, with
  no baseline yet, passes."""
  verdicts = dict(anomalies.get_json_value_custom_property(
      distribution_validator_executor.ARTIFACT_PROPERTY_BLESSED_KEY) or {})
  per_pair = {}
  if all(v == distribution_validator_executor.NO_BASELINE_STATS for v in verdicts.values()):
    logging.info('Drift check: no baseline yet (a first run); nothing to compare with. This '
                 'data becomes the baseline as it passes the check.')
  for pair, verdict in sorted(verdicts.items()):
    if verdict == distribution_validator_executor.NO_BASELINE_STATS:
      continue
    # The DistributionValidator itself flags configured features it could not compare.
    rows = findings(load_split_pair_anomalies(anomalies, pair))
    per_pair[pair] = rows
    logging.info('Drift check of split pair %s (span %d against the baseline):\n%s', pair,
                 anomalies.span, format_report(rows))
  drifted = {pair: [r for r in rows if r.flagged] for pair, rows in per_pair.items()}
  drifted = {pair: rows for pair, rows in drifted.items() if rows}
  with tf.io.gfile.GFile(os.path.join(report.uri, REPORT_FILE), 'w') as f:
    json.dump({'on_drift': on_drift, 'baseline': bool(per_pair),
               'split_pairs': {pair: [dataclasses.asdict(r) for r in rows]
                               for pair, rows in per_pair.items()}}, f, indent=1)
  report.set_int_custom_property('has_baseline', int(bool(per_pair)))
  report.set_int_custom_property('drifted', int(bool(drifted)))
  if not drifted:
    return
  summary = '; '.join(
      f'{pair}: ' + ', '.join(
          f'{r.feature} {r.check} {r.score:.3f} > {r.threshold}' if r.score is not None
          else f'{r.feature} {r.check}' for r in rows)
      for pair, rows in drifted.items())
  if on_drift == 'warn':
    logging.warning('DriftGate: the data drifted from the baseline (%s); training anyway '
                    '(--on-drift warn).', summary)
    return
  raise DataDriftError(
      f'the data drifted from the baseline, the last data that passed this check ({summary}); '
      'the whole report is in the log with --verbose (a failed step keeps no output). Check the '
      'new images (python validate.py shows the distributions), or accept them with --on-drift '
      'warn or higher --drift-* thresholds.')
