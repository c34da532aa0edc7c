"""Drift of new image data from a baseline, before training.

TFX's DistributionValidator compares this run's statistics with a baseline's and records the
anomalies, but never stops a run. This module gives it
* its config, built from ``pipeline.drift.DriftThresholds`` (the same comparators serve
  ``validate.py``);
* a gate, DriftGate, that prints a per-feature report and fails the run on drift, upstream of
  Transform as LabelBalance is;
* its baseline: AcceptedStatistics republishes statistics that passed the gate, and the pipeline
  resolves the latest of them through MLMD (TFX's LatestArtifactStrategy, which Kubeflow V2
  compiles too).
"""
import dataclasses
import json
import os
from typing import Dict, Iterable, List, Optional, Set, Tuple

from absl import logging
import tensorflow as tf
import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.components.distribution_validator import executor as distribution_validator_executor
from tfx.proto import distribution_validator_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.modules import features
from pipeline.drift import ON_DRIFT_CHOICES, DriftThresholds

REPORT_FILE = 'drift_report.json'
ACCEPTED_KEY = 'accepted'  # AcceptedStatistics' output
# The training split is compared; eval and test are small hash samples of validation/ whose
# histograms vary by chance (LabelBalance gates only train for the same reason).
COMPARED_SPLIT_PAIRS = [('train', 'train')]
_MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity',
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: 'Jensen-Shannon',
    anomalies_pb2.DriftSkewInfo.Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE: 'normalized abs diff',
}
# Reasons that drift_skew_info already reports with their score.
_SCORED_REASONS = {anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
                   anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH}


class DataDriftError(ValueError):
  """The new data differs from the baseline by more than the thresholds."""


# The class name is the label's categorical form (the integer label has numeric statistics).
COMPARED_FEATURES = (features.LABEL_NAME_KEY,) + features.CATEGORICAL_IMAGE_PROPERTIES + (
    features.NUMERIC_IMAGE_PROPERTIES)


def feature_comparators(thresholds: DriftThresholds) -> Dict[str, schema_pb2.FeatureComparator]:
  """{feature: comparator}: L-infinity on categorical features, Jensen-Shannon on numeric ones."""
  comparators = {}
  for name, linf in [(features.LABEL_NAME_KEY, thresholds.label_linf)] + [
      (name, thresholds.categorical_linf) for name in features.CATEGORICAL_IMAGE_PROPERTIES]:
    comparators[name] = schema_pb2.FeatureComparator(
        infinity_norm=schema_pb2.InfinityNorm(threshold=linf))
  for name in features.NUMERIC_IMAGE_PROPERTIES:
    comparators[name] = schema_pb2.FeatureComparator(
        jensen_shannon_divergence=schema_pb2.JensenShannonDivergence(
            threshold=thresholds.numeric_js))
  return comparators


def distribution_validator_config(
    thresholds: DriftThresholds) -> distribution_validator_pb2.DistributionValidatorConfig:
  config = distribution_validator_pb2.DistributionValidatorConfig()
  for name, comparator in feature_comparators(thresholds).items():
    feature = config.default_slice_config.feature.add(distribution_comparator=comparator)
    feature.path.step.append(name)
  return config


def with_drift_comparators(schema: schema_pb2.Schema,
                           thresholds: DriftThresholds) -> schema_pb2.Schema:
  """A copy of ``schema`` whose features carry the drift comparators, so that
  ``tfdv.validate_statistics(..., previous_statistics=baseline)`` measures the drift too."""
  result = schema_pb2.Schema()
  result.CopyFrom(schema)
  comparators = feature_comparators(thresholds)
  for feature in result.feature:
    if feature.name in comparators:
      feature.drift_comparator.CopyFrom(comparators[feature.name])
  return result


@dataclasses.dataclass(frozen=True)
class Finding:
  """One line of the report: a drift measurement, or another anomaly of a feature."""
  feature: str
  check: str
  score: Optional[float]
  threshold: Optional[float]
  flagged: bool
  detail: str = ''


def findings(anomalies: anomalies_pb2.Anomalies,
             compared_features: Iterable[str] = ()) -> List[Finding]:
  """Every measurement and anomaly in ``anomalies``, flagged ones first.

  A feature of ``compared_features`` that was not measured (the baseline lacks it) is flagged:
  an unchecked feature must not pass silently.
  """
  result = []
  for info in anomalies.drift_skew_info:
    for measurement in info.drift_measurements:
      result.append(Finding('.'.join(info.path.step), _MEASURE_NAMES.get(measurement.type, '?'),
                            measurement.value, measurement.threshold,
                            measurement.value > measurement.threshold))
  measured = {f.feature for f in result}
  for name, info in sorted(anomalies.anomaly_info.items()):
    for reason in info.reason:
      if reason.type not in _SCORED_REASONS:
        result.append(Finding(name, reason.short_description or 'anomaly', None, None, True,
                              reason.description))
  for reason in anomalies.dataset_anomaly_info.reason:
    result.append(Finding('(dataset)', reason.short_description, None, None, True,
                          reason.description))
  for name in sorted(set(compared_features) - measured - {f.feature for f in result}):
    result.append(Finding(name, 'not compared', None, None, True,
                          'the baseline or the new data has no statistics for this feature'))
  return sorted(result, key=lambda f: (not f.flagged, f.feature, f.check))


def format_report(rows: List[Finding]) -> str:
  """A table: feature, check, score, threshold, verdict (and what an anomaly means)."""

  def number(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'

  lines = [f'{"feature":<17} {"check":<28} {"score":>8} {"threshold":>9}  verdict']
  for row in rows:
    verdict = ('DRIFT' if row.score is not None else 'ANOMALY') if row.flagged else 'ok'
    line = (f'{row.feature:<17} {row.check[:28]:<28} {number(row.score):>8} '
            f'{number(row.threshold):>9}  {verdict}')
    lines.append(f'{line}: {row.detail}' if row.detail else line)
  return '\n'.join(lines)


# --- the baseline --------------------------------------------------------------------------------

@tfx.dsl.components.component
def AcceptedStatistics(  # pylint: disable=invalid-name
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    accepted: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
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


class LatestOrNoStatisticsStrategy(tfx.dsl.experimental.LatestArtifactStrategy):
  """TFX's LatestArtifactStrategy, except that a cold start (nothing to resolve yet) resolves to
  nothing instead of failing the resolver node, as LatestBlessedModelStrategy does."""

  def resolve_artifacts(self, store, input_dict):
    return super().resolve_artifacts(store, input_dict) or {key: [] for key in input_dict}


def _latest_output(store: mlmd.MetadataStore, type_name: str, output_key: str,
                   producer_inputs: Optional[Set[int]] = None) -> Optional[int]:
  """Id of the newest ``type_name`` artifact published as ``output_key`` (by an execution that
  read one of ``producer_inputs``, when given)."""
  try:
    candidates = [a.id for a in store.get_artifacts_by_type(type_name)]
  except mlmd.errors.NotFoundError:
    return None
  for event in sorted(store.get_events_by_artifact_ids(candidates), key=lambda e: -e.artifact_id):
    if (event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps
        and event.path.steps[0].key == output_key):
      if producer_inputs is None or producer_inputs & {
          e.artifact_id for e in store.get_events_by_execution_ids([event.execution_id])
          if e.type == metadata_store_pb2.Event.INPUT}:
        return event.artifact_id
  return None


def accepted_baseline(
    store: mlmd.MetadataStore) -> Optional[Tuple[metadata_store_pb2.Artifact,
                                                 metadata_store_pb2.Artifact]]:
  """(statistics, schema) of the latest data that passed the drift check, the pipeline's baseline;
  the schema is the pipeline's (ImageSchema's) of the same data. None before the first accepted
  run."""
  accepted_id = _latest_output(store, 'ExampleStatistics', ACCEPTED_KEY)
  if accepted_id is None:
    return None
  accepting = [e.execution_id for e in store.get_events_by_artifact_ids([accepted_id])
               if e.type == metadata_store_pb2.Event.OUTPUT]  # AcceptedStatistics, not its readers
  source_ids = {e.artifact_id for e in store.get_events_by_execution_ids(accepting)
                if e.type == metadata_store_pb2.Event.INPUT}
  inferred_id = _latest_output(store, 'Schema', 'schema', producer_inputs=source_ids)
  if inferred_id is None:
    return None
  # The pipeline's schema: SchemaGen's, with the image properties' domains (ImageSchema).
  schema_id = _latest_output(store, 'Schema', 'curated_schema', producer_inputs={inferred_id})
  if schema_id is None:
    return None
  [statistics] = store.get_artifacts_by_id([accepted_id])
  [schema] = store.get_artifacts_by_id([schema_id])
  return statistics, schema


# --- the gate ------------------------------------------------------------------------------------

class DriftReport(tfx.dsl.Artifact):
  """The drift findings of a run (``drift_report.json``)."""
  # Kubeflow V2 imports the class by '<module>.<Class>'; the ``components`` package re-exports it.
  TYPE_NAME = 'components.DriftReport'


def load_split_pair_anomalies(anomalies: types.Artifact,
                              split_pair: str) -> anomalies_pb2.Anomalies:
  path = os.path.join(anomalies.uri, f'SplitPair-{split_pair}',
                      distribution_validator_executor.DEFAULT_FILE_NAME)
  return anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))


@tfx.dsl.components.component
def DriftGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    report: tfx.dsl.components.OutputArtifact[DriftReport],
    on_drift: tfx.dsl.components.Parameter[str] = 'fail',
) -> None:
  """Reads the DistributionValidator's verdict, logs the report, and fails the run on drift when
  ``on_drift`` is 'fail' ('warn' only logs). A cold start, with no baseline yet, passes."""
  if on_drift not in ON_DRIFT_CHOICES:
    raise ValueError(f'on_drift must be one of {ON_DRIFT_CHOICES}, got {on_drift!r}')
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
    logging.warning('The data drifted from the baseline (%s); training anyway (--on-drift warn).',
                    summary)
    return
  raise DataDriftError(
      f'the data drifted from the baseline, the last data that passed this check ({summary}); '
      f'the full report is in {report.uri}/{REPORT_FILE}. Check the new images (python validate.py '
      'shows the distributions), or accept them with --on-drift warn or higher --drift-* '
      'thresholds.')
