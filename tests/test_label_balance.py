"""Class counts from StatisticsGen output and the imbalance ratio."""
import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import label_balance
from components.modules import features


def _stats(counts):
  stats = statistics_pb2.DatasetFeatureStatistics()
  feature = stats.features.add()
  feature.path.step.append(features.LABEL_NAME_KEY)
  for name, count in counts.items():
    feature.string_stats.rank_histogram.buckets.add(label=name, sample_count=count)
  return stats


def test_counts_come_from_the_class_name_histogram():
  assert label_balance.class_counts(_stats({'cats': 1000, 'dogs': 1000})) == {
      'cats': 1000, 'dogs': 1000}


def test_ratio_is_max_over_min():
  assert label_balance.imbalance_ratio({'cats': 900, 'dogs': 100}) == 9.0
  assert label_balance.imbalance_ratio({'cats': 10, 'dogs': 10, 'birds': 5}) == 2.0


def test_missing_feature_is_reported():
  with pytest.raises(ValueError, match=features.LABEL_NAME_KEY):
    label_balance.class_counts(statistics_pb2.DatasetFeatureStatistics())
