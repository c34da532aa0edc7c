"""Drift measured the TFDV way: the comparators of every compared feature, and the findings.

The same comparators configure the pipeline's DistributionValidator and ``validate.py``'s
``tfdv.validate_statistics``; ``findings`` and ``format_report`` turn either's anomalies into the
per-feature report that DriftGate logs and ``validate.py`` prints.
"""
import dataclasses
from typing import Dict, Iterable, List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.proto import distribution_validator_pb2

from components.drift.drift_thresholds import DriftThresholds
from components.modules import features

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
