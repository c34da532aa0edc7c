"""Class counts from StatisticsGen output, the imbalance ratio, and the gate stopping a real run."""
import re

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

import local_runner
from components import label_balance
from components.modules import features
from pipeline import run_summary
from tests.trees import make_tree


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


def test_an_imbalanced_training_split_stops_the_run_before_transform(tmp_path, capfd):
  """The gate in a real run (local_runner's main, as a user starts it): 30 cats to 10 dogs is a
  ratio of 3, above the default bound of 1.5. The run stops after StatisticsGen."""
  data = make_tree(str(tmp_path / 'data'), {'train': {'cats': 30, 'dogs': 10},
                                            'validation': {'cats': 10, 'dogs': 10}})
  pipeline_root = tmp_path / 'pipeline_root'
  # Small model flags, so that a broken gate that lets the run train fails the test in a minute.
  status = local_runner.main(
      ['--data-root', data, '--pipeline-root', str(pipeline_root),
       '--serving-dir', str(tmp_path / 'serving'), '--epochs', '1', '--image-size', '32'])
  stderr = capfd.readouterr().err
  assert status == 1, stderr
  errors = [line for line in stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1, stderr
  assert re.fullmatch(
      r"error: LabelImbalanceError: classes are unbalanced: max/min count ratio \{'train': 3\.0\} "
      r"exceeds 1\.5 \(counts \{'train': \{'cats': 30, 'dogs': 10\}, 'eval': .*\}\); add images "
      r'to the small classes or raise --max-class-ratio\.', errors[0]), errors[0]
  assert 'Traceback' not in stderr
  executions = run_summary.summarize(str(pipeline_root / 'metadata.sqlite')).executions
  assert executions['LabelBalance'][0] == 'FAILED'
  assert 'Transform' not in executions and 'Trainer' not in executions
