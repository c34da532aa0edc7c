"""Class counts from StatisticsGen output, the imbalance ratio, and the gate stopping a real run."""
import re

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

import local_runner
from components import label_balance
from components.modules import features
from run_results import run_summary
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


def test_what_stops_a_run_says_the_numbers_and_the_fix():
  names = ['birds', 'cats', 'dogs']
  assert label_balance.training_problems({'birds': 10, 'cats': 100, 'dogs': 50}, names, 10, 20) == []
  (few,) = label_balance.training_problems({'birds': 9, 'cats': 100, 'dogs': 50}, names, 10, 20)
  assert few.startswith("class(es) with fewer than 10 training images: {'birds': 9}; add images")
  (missing,) = label_balance.training_problems({'cats': 100, 'dogs': 50}, names, 10, 20)
  assert "{'birds': 0}" in missing  # a class folder whose images were all skipped
  (ratio,) = label_balance.training_problems({'birds': 10, 'cats': 250, 'dogs': 50}, names, 5, 20)
  assert ratio.startswith("the training split's largest class (cats, 250 images) has 25.0x the "
                          'images of its smallest (birds, 10), above --max-class-ratio 20')


def test_a_class_with_too_few_images_stops_the_run_before_transform(tmp_path, capfd):
  """The gate in a real run (local_runner's main, as a user starts it): 8 dogs to learn from, below
  the default of 10. The run stops after StatisticsGen."""
  data = make_tree(str(tmp_path / 'data'), {'train': {'cats': 30, 'dogs': 8},
                                            'validation': {'cats': 10, 'dogs': 10}})
  pipeline_root = tmp_path / 'pipeline_root'
  # Small model flags, so that a broken gate that lets the run train fails the test in a minute.
  status = local_runner.main(
      ['--data-root', data, '--pipeline-root', str(pipeline_root),
       '--serving-dir', str(tmp_path / 'serving'), '--recipe', 'scratch', '--epochs', '1',
       '--image-size', '32'])
  stderr = capfd.readouterr().err
  assert status == 1, stderr
  errors = [line for line in stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1, stderr
  assert re.fullmatch(
      r"error: LabelImbalanceError: class\(es\) with fewer than 10 training images: "
      r"\{'dogs': 8\}; add images to them, remove those classes, or lower --min-class-images "
      r"\(counts per split: \{'train': \{'cats': 30, 'dogs': 8\}, 'eval': .*\}\)", errors[0]), errors[0]
  assert 'Traceback' not in stderr
  executions = run_summary.summarize(str(pipeline_root / 'metadata.sqlite')).executions
  assert executions['LabelBalance'][0] == 'FAILED'
  assert 'Transform' not in executions and 'Trainer' not in executions
