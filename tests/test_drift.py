"""Drift checks: the DistributionValidator's config, its baseline through MLMD, and the gate."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.distribution_validator import executor as dv_executor
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import json_utils

from components.drift import drift_comparison, drift_gate
from components.drift.drift_thresholds import DriftThresholds
from components.modules import features
from pipeline import configs
from runner import flags
from run_results import mlmd_runs


def test_config_compares_categories_by_l_infinity_and_numbers_by_jensen_shannon():
  config = drift_comparison.distribution_validator_config(
      DriftThresholds(label_linf=0.05, categorical_linf=0.2, numeric_js=0.3))
  comparators = {'.'.join(f.path.step): f.distribution_comparator
                 for f in config.default_slice_config.feature}
  assert set(comparators) == set(drift_comparison.COMPARED_FEATURES)
  assert comparators[features.LABEL_NAME_KEY].infinity_norm.threshold == 0.05
  assert comparators[features.FORMAT_KEY].infinity_norm.threshold == 0.2
  assert comparators[features.COLOR_MODE_KEY].infinity_norm.threshold == 0.2
  for name in features.NUMERIC_IMAGE_PROPERTIES:
    assert comparators[name].jensen_shannon_divergence.threshold == 0.3


# --- the DistributionValidator's real executor, then the gate ------------------------------------

def _frame(n, brightness, dogs_share=0.5, seed=0):
  rng = np.random.default_rng(seed)
  return pd.DataFrame({
      features.LABEL_NAME_KEY: np.where(rng.random(n) < dogs_share, 'dogs', 'cats'),
      features.FORMAT_KEY: ['jpeg'] * n,
      features.COLOR_MODE_KEY: ['RGB'] * n,
      features.BRIGHTNESS_KEY: rng.normal(brightness, 20, n).clip(0, 255),
      **{name: rng.normal(300, 40, n) for name in features.NUMERIC_IMAGE_PROPERTIES
         if name != features.BRIGHTNESS_KEY},
  })


def _statistics_artifact(path, frame):
  artifact = standard_artifacts.ExampleStatistics()
  artifact.uri = str(path)
  artifact.split_names = artifact_utils.encode_split_names(['train'])
  os.makedirs(path / 'Split-train')
  with open(path / 'Split-train' / 'FeatureStats.pb', 'wb') as f:
    f.write(tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
  return artifact


def _validate(tmp_path, statistics, baseline):
  """Runs TFX's DistributionValidator executor with the pipeline's config."""
  anomalies = standard_artifacts.ExampleAnomalies()
  anomalies.uri = str(tmp_path / 'anomalies')
  dv_executor.Executor().Do(
      {standard_component_specs.STATISTICS_KEY: [statistics],
       standard_component_specs.BASELINE_STATISTICS_KEY: [baseline] if baseline else []},
      {standard_component_specs.ANOMALIES_KEY: [anomalies]},
      {standard_component_specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY:
           drift_comparison.distribution_validator_config(DriftThresholds()),
       standard_component_specs.INCLUDE_SPLIT_PAIRS_KEY:
           json_utils.dumps(drift_comparison.COMPARED_SPLIT_PAIRS)})
  return anomalies


def _gate(tmp_path, anomalies, on_drift='fail'):
  report = drift_gate.DriftReport()
  report.uri = str(tmp_path / 'report')
  os.makedirs(report.uri, exist_ok=True)
  drift_gate.DriftGate.test_call(anomalies=anomalies, report=report, on_drift=on_drift)
  with open(os.path.join(report.uri, drift_gate.REPORT_FILE)) as f:
    return report, json.load(f)


@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
  return _statistics_artifact(tmp_path_factory.mktemp('baseline') / 'stats', _frame(2000, 115))


def test_darker_images_stop_the_run_with_the_scores(tmp_path, baseline):
  darker = _statistics_artifact(tmp_path / 'stats', _frame(2000, 46, seed=1))
  anomalies = _validate(tmp_path, darker, baseline)
  with pytest.raises(drift_gate.DataDriftError, match=r'mean_brightness Jensen-Shannon 0\.\d+ > 0\.2'):
    _gate(tmp_path, anomalies)
  report, content = _gate(tmp_path, anomalies, on_drift='warn')  # logs, does not stop
  assert report.get_int_custom_property('drifted') == 1
  rows = {(r['feature'], r['check']): r for r in content['split_pairs']['train_train']}
  assert rows[(features.BRIGHTNESS_KEY, 'Jensen-Shannon')]['flagged']
  assert not rows[(features.CONTRAST_KEY, 'Jensen-Shannon')]['flagged']


def test_label_skew_is_flagged_and_a_fresh_sample_is_not(tmp_path, baseline):
  skewed = _statistics_artifact(tmp_path / 'skewed', _frame(2000, 115, dogs_share=0.1, seed=2))
  rows = drift_comparison.findings(drift_gate.load_split_pair_anomalies(
      _validate(tmp_path / 'a', skewed, baseline), 'train_train'))
  label = next(r for r in rows if r.feature == features.LABEL_NAME_KEY)
  assert label.flagged and label.check == 'L-infinity'
  assert label.score == pytest.approx(0.4, abs=0.05)

  fresh = _statistics_artifact(tmp_path / 'fresh', _frame(2000, 115, seed=3))
  report, _ = _gate(tmp_path / 'e', _validate(tmp_path / 'e', fresh, baseline))
  assert report.get_int_custom_property('drifted') == 0


def test_cold_start_passes_with_a_note(tmp_path, baseline):
  anomalies = _validate(tmp_path, baseline, None)
  assert dict(anomalies.get_json_value_custom_property('blessed')) == {
      'train': dv_executor.NO_BASELINE_STATS}
  report, content = _gate(tmp_path, anomalies)
  assert report.get_int_custom_property('has_baseline') == 0
  assert content['split_pairs'] == {}


def test_unknown_on_drift_and_thresholds_that_cannot_pass_are_refused():
  with pytest.raises(configs.ConfigError, match='--on-drift'):
    configs.PipelineConfig('d', 'p', 's', on_drift='ignore')
  with pytest.raises(configs.ConfigError, match='--drift-numeric-js: 0 is not a positive number'):
    configs.PipelineConfig('d', 'p', 's', drift_thresholds=DriftThresholds(numeric_js=0))


# --- the baseline through MLMD ------------------------------------------------------------------

class _Lineage:
  """A real (in-memory SQLite) MLMD store, filled as TFX's launcher fills it."""

  def __init__(self):
    config = metadata_store_pb2.ConnectionConfig()
    config.fake_database.SetInParent()
    self.store = metadata_store.MetadataStore(config)
    self._execution_type = self.store.put_execution_type(
        metadata_store_pb2.ExecutionType(name='Component'))

  def artifact(self, artifact_class):
    artifact = artifact_class()
    artifact.uri = f'/artifacts/{artifact_class.TYPE_NAME}'
    mlmd_artifact = artifact.mlmd_artifact
    mlmd_artifact.type_id = self.store.put_artifact_type(artifact.artifact_type)
    [artifact.id] = self.store.put_artifacts([mlmd_artifact])
    return artifact

  def execution(self, inputs, outputs):
    events = []
    for kind, artifacts in ((metadata_store_pb2.Event.INPUT, inputs),
                            (metadata_store_pb2.Event.OUTPUT, outputs)):
      for key, artifact in artifacts.items():
        event = metadata_store_pb2.Event(type=kind)
        event.path.steps.add().key = key
        events.append((artifact.mlmd_artifact, event))
    self.store.put_execution(metadata_store_pb2.Execution(type_id=self._execution_type), events, [])

  def run(self, passes_drift_check):
    """StatisticsGen -> SchemaGen -> ImageSchema, and AcceptedStatistics when the drift check
    passes."""
    statistics = self.artifact(standard_artifacts.ExampleStatistics)
    self.execution({'examples': self.artifact(standard_artifacts.Examples)},
                   {'statistics': statistics})
    inferred = self.artifact(standard_artifacts.Schema)
    self.execution({'statistics': statistics}, {'schema': inferred})
    schema = self.artifact(standard_artifacts.Schema)
    self.execution({'schema': inferred}, {'curated_schema': schema})
    if not passes_drift_check:
      return None
    accepted = self.artifact(standard_artifacts.ExampleStatistics)
    self.execution({'statistics': statistics}, {drift_gate.ACCEPTED_KEY: accepted})
    return accepted.id, schema.id


def test_baseline_is_the_last_data_that_passed_the_drift_check():
  lineage = _Lineage()
  assert mlmd_runs.accepted_baseline(lineage.store) is None  # cold start: an empty store
  lineage.run(passes_drift_check=False)
  assert mlmd_runs.accepted_baseline(lineage.store) is None
  accepted = lineage.run(passes_drift_check=True)
  lineage.run(passes_drift_check=False)  # a later batch stopped for drift
  statistics, schema = mlmd_runs.accepted_baseline(lineage.store)
  assert (statistics.id, schema.id) == accepted


def test_accepted_statistics_copy_every_split(tmp_path, baseline):
  accepted = standard_artifacts.ExampleStatistics()
  accepted.uri = str(tmp_path / 'accepted')
  drift_gate.AcceptedStatistics.test_call(statistics=baseline, accepted=accepted)
  assert artifact_utils.decode_split_names(accepted.split_names) == ['train']
  assert (tmp_path / 'accepted' / 'Split-train' / 'FeatureStats.pb').read_bytes() == open(
      os.path.join(baseline.uri, 'Split-train', 'FeatureStats.pb'), 'rb').read()


def test_findings_flag_features_that_were_not_compared():
  anomalies = anomalies_pb2.Anomalies()
  info = anomalies.drift_skew_info.add()
  info.path.step.append(features.FORMAT_KEY)
  info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY, value=1.0,
                              threshold=0.1)
  rows = drift_comparison.findings(anomalies, [features.FORMAT_KEY, features.BRIGHTNESS_KEY])
  assert [(r.feature, r.check, r.flagged) for r in rows] == [
      (features.FORMAT_KEY, 'L-infinity', True), (features.BRIGHTNESS_KEY, 'not compared', True)]
  assert 'DRIFT' in drift_comparison.format_report(rows) and 'ANOMALY' in drift_comparison.format_report(rows)


def test_flags_give_the_config_fields():
  parser = flags.FlagParser()
  flags.add_drift_arguments(parser)
  assert flags.drift_settings(parser.parse_args([])) == {
      'drift_thresholds': DriftThresholds(), 'on_drift': configs.default('on_drift')}
  settings = flags.drift_settings(parser.parse_args(
      ['--drift-numeric-js', '0.3', '--drift-label-linf', '0.05', '--on-drift', 'warn']))
  config = configs.PipelineConfig(data_root='d', pipeline_root='p', serving_dir='s', **settings)
  assert config.drift_thresholds == DriftThresholds(label_linf=0.05, numeric_js=0.3)
  assert config.on_drift == 'warn'
  with pytest.raises(SystemExit):
    parser.parse_args(['--on-drift', 'ignore'])
  with pytest.raises(configs.ConfigError, match='--drift-label-linf: -0.1 is not a positive'):
    flags.drift_settings(parser.parse_args(['--drift-label-linf', '-0.1']))
