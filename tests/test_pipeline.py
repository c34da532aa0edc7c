"""create_pipeline: the components, their order, and the Evaluator's gate."""
import importlib
import json
import os
import shutil
import sys

from google.protobuf import json_format
from PIL import Image
import tensorflow_model_analysis as tfma

from tfx.components.distribution_validator.component import DistributionValidator
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.utils import proto_utils

from components.drift.drift_comparison import distribution_validator_config
from components.drift.drift_gate import LatestOrNoStatisticsStrategy
from components.drift.drift_thresholds import DriftThresholds
from pipeline import configs
from pipeline import module_files
from pipeline.pipeline import create_pipeline
from tests.trees import SAMPLE_DATA


def _config(tmp_path, data_root=SAMPLE_DATA, **overrides):
  return configs.PipelineConfig(data_root=data_root, pipeline_root=str(tmp_path / 'root'),
                                serving_dir=str(tmp_path / 'serving'), **overrides)


def _eval_config(pipeline) -> tfma.EvalConfig:
  evaluator = next(c for c in pipeline.components if c.id == 'Evaluator')
  return json_format.Parse(evaluator.exec_properties['eval_config'], tfma.EvalConfig())


def _metric(pipeline, class_name):
  return next(m for spec in _eval_config(pipeline).metrics_specs for m in spec.metrics
              if m.class_name == class_name)


def test_components_and_data_checks_before_training(tmp_path):
  pipeline = create_pipeline(_config(tmp_path, gate_threshold=0.93))
  by_id = {c.id: c for c in pipeline.components}
  assert set(by_id) == {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'ImageSchema',
                        'LabelBalance', 'ExampleValidator', 'baseline_statistics_resolver',
                        'DistributionValidator', 'DriftGate', 'AcceptedStatistics', 'Transform',
                        'FeatureExtractor', 'BaseFeatures', 'DataQuality', 'Tuner', 'Trainer',
                        'latest_blessed_model_resolver', 'EmbeddingDriftGate', 'Evaluator',
                        'TFLiteCheck', 'Pusher'}
  # The curated schema (SchemaGen's plus the image properties' domains) is the one used.
  for consumer in ('ExampleValidator', 'Transform', 'Trainer'):
    assert 'ImageSchema' in {node.id for node in by_id[consumer].upstream_nodes}
  assert {'LabelBalance', 'ExampleValidator', 'DriftGate', 'EmbeddingDriftGate'} <= {
      node.id for node in by_id['Transform'].upstream_nodes}
  # The frozen base's features, computed once by TFX's BulkInferrer on every split, feed the
  # Tuner and the Trainer; the Tuner's best hyperparameters feed the Trainer.
  assert by_id['BaseFeatures'].inputs['model'].producer_component_id == 'FeatureExtractor'
  assert json.loads(by_id['BaseFeatures'].exec_properties['data_spec']) == {}  # every split
  for consumer in ('Tuner', 'Trainer'):
    assert by_id[consumer].inputs['examples'].producer_component_id == 'BaseFeatures'
  assert by_id['Trainer'].inputs['hyperparameters'].producer_component_id == 'Tuner'
  # Data quality from the same features, before the Tuner and the Trainer (a leak stops the run).
  assert by_id['DataQuality'].inputs['examples'].producer_component_id == 'BaseFeatures'
  for consumer in ('Tuner', 'Trainer'):
    assert 'DataQuality' in {node.id for node in by_id[consumer].upstream_nodes}
  assert by_id['DataQuality'].exec_properties['max_leak_fraction'] == 0.02
  assert by_id['Evaluator'].inputs['examples'].producer_component_id == 'ImageExampleGen'
  # The embedding gate compares with the latest blessed model, the Evaluator's baseline too.
  assert 'latest_blessed_model_resolver' in {
      node.id for node in by_id['EmbeddingDriftGate'].upstream_nodes}
  assert json.loads(by_id['Evaluator'].exec_properties['example_splits']) == ['test']
  trainer_config = json.loads(by_id['Trainer'].exec_properties['custom_config'])
  assert trainer_config['class_names'] == ['cats', 'dogs']  # label id i -> class_names[i]
  assert trainer_config['trains_on_features'] is True
  assert json.loads(by_id['Tuner'].exec_properties['custom_config']) == trainer_config
  # The module files are used where installed, and the cache sees their code (module_files.py).
  for user, module_file in (('Transform', configs.TRANSFORM_MODULE_FILE),
                            ('Trainer', configs.TRAINER_MODULE_FILE),
                            ('Tuner', configs.TUNER_MODULE_FILE)):
    properties = by_id[user].exec_properties
    assert properties['module_file'] == module_file and not properties.get('module_path')
    assert not by_id[user]._pip_dependencies  # pylint: disable=protected-access  (no wheel to build)
    assert json.loads(properties['custom_config'])[module_files.FINGERPRINT_KEY] == (
        module_files.fingerprint())
  assert by_id['FeatureExtractor'].exec_properties['module_fingerprint'] == (
      module_files.fingerprint())
  assert 'UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES' not in os.environ  # only while constructing
  # The gate: balanced accuracy by default, on the whole test split only.
  gated = _metric(pipeline, 'ClassBalancedAccuracy')
  (overall,) = gated.per_slice_thresholds
  assert list(overall.slicing_specs) == [tfma.SlicingSpec()]
  assert overall.threshold.value_threshold.lower_bound.value == 0.93
  assert not _metric(pipeline, 'SparseCategoricalAccuracy').per_slice_thresholds
  # The default gate against the last blessed model is the paired test (tests/test_blessing_gate.py).
  assert not gated.threshold.HasField('change_threshold')
  assert _metric(pipeline, 'PairedAccuracyTest').per_slice_thresholds
  assert pipeline.metadata_connection_config.sqlite.filename_uri == str(
      tmp_path / 'root' / 'metadata.sqlite')


def test_images_train_without_features_or_tuner(tmp_path):
  """A base trained from scratch (the sample's recipe) or --per-epoch-augmentation: the Trainer
  reads the ExampleGen's examples; no feature pass, no Tuner. --tuner-trials 0: no Tuner."""
  for settings in (dict(weights='none'), dict(per_epoch_augmentation=True)):
    by_id = {c.id: c for c in create_pipeline(_config(tmp_path, **settings)).components}
    assert not {'FeatureExtractor', 'BaseFeatures', 'DataQuality', 'Tuner'} & set(by_id)
    assert by_id['Trainer'].inputs['examples'].producer_component_id == 'ImageExampleGen'
    assert 'hyperparameters' not in by_id['Trainer'].inputs
  by_id = {c.id: c for c in create_pipeline(_config(tmp_path, tuner_trials=0)).components}
  assert 'Tuner' not in by_id and 'BaseFeatures' in by_id


def test_the_gate_metric_and_its_default_threshold(tmp_path):
  pipeline = create_pipeline(_config(tmp_path, gate_metric='accuracy'))
  (overall,) = _metric(pipeline, 'SparseCategoricalAccuracy').per_slice_thresholds
  assert overall.threshold.value_threshold.lower_bound.value == 0.75  # 2 classes: halfway
  assert not _metric(pipeline, 'ClassBalancedAccuracy').per_slice_thresholds


def test_image_budget_reaches_image_example_gen_and_the_transform_graph(tmp_path):
  from components.image_example_gen import executor_config  # pylint: disable=g-import-not-at-top
  pipeline = create_pipeline(_config(tmp_path, max_image_pixels=1234, max_image_bytes=5678))
  by_id = {c.id: c for c in pipeline.components}
  transform_config = json.loads(by_id['Transform'].exec_properties['custom_config'])
  assert (transform_config['max_image_pixels'], transform_config['max_image_bytes']) == (1234, 5678)
  example_gen_config = executor_config.unpack_custom_config({
      key: proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR') else value
      for key, value in by_id['ImageExampleGen'].exec_properties.items()})
  assert (example_gen_config['max_image_pixels'], example_gen_config['max_image_bytes']) == (
      1234, 5678)


def test_one_vs_rest_metrics_cover_every_class(tmp_path):
  for name in ('birds', 'cats', 'dogs'):
    os.makedirs(tmp_path / 'data' / name)
    Image.new('RGB', (8, 8)).save(tmp_path / 'data' / name / 'a.png')
  pipeline = create_pipeline(_config(tmp_path, data_root=str(tmp_path / 'data')))
  binarize = _eval_config(pipeline).metrics_specs[1].binarize
  assert list(binarize.class_ids.values) == [0, 1, 2]
  (overall,) = _metric(pipeline, 'ClassBalancedAccuracy').per_slice_thresholds
  assert overall.threshold.value_threshold.lower_bound.value == round(1 / 3 + 1 / 3, 4)


def test_drift_check_compares_training_statistics_with_the_last_accepted(tmp_path):
  thresholds = DriftThresholds(label_linf=0.07, categorical_linf=0.1, numeric_js=0.25)
  pipeline = create_pipeline(_config(tmp_path, drift_thresholds=thresholds, on_drift='warn'))
  by_id = {c.id: c for c in pipeline.components}
  validator = by_id['DistributionValidator']
  assert isinstance(validator, DistributionValidator)  # TFX's own component
  assert validator.inputs['statistics'].producer_component_id == 'StatisticsGen'
  baseline = validator.inputs['baseline_statistics']
  assert baseline.producer_component_id == 'baseline_statistics_resolver' and baseline.is_optional
  resolver = by_id['baseline_statistics_resolver']
  assert resolver.exec_properties['resolver_class'] is LatestOrNoStatisticsStrategy
  accepted = by_id['AcceptedStatistics']  # the next baseline, only once the gate has passed
  assert accepted.inputs['statistics'].producer_component_id == 'StatisticsGen'
  assert 'DriftGate' in {node.id for node in accepted.upstream_nodes}
  config = validator.exec_properties['distribution_validator_config']
  assert config == distribution_validator_config(thresholds)
  assert json.loads(validator.exec_properties['include_split_pairs']) == [['train', 'train']]
  assert by_id['DriftGate'].exec_properties['on_drift'] == 'warn'


def test_the_stated_orchestrator_picks_the_baseline_resolver(tmp_path):
  """Kubeflow's MLMD: TFX's LatestArtifactStrategy (its launcher runs resolvers in the cluster),
  even for a spec compiled with a local pipeline root; locally, the strategy that allows none."""
  def strategy(orchestrator):
    pipeline = create_pipeline(_config(tmp_path, orchestrator=orchestrator))
    resolver = next(c for c in pipeline.components if c.id == 'baseline_statistics_resolver')
    return resolver.exec_properties['resolver_class']
  assert strategy(configs.KUBEFLOW) is LatestArtifactStrategy
  assert strategy(configs.LOCAL) is strategy(configs.AIRFLOW) is LatestOrNoStatisticsStrategy


def test_module_fingerprint_changes_with_any_module_file(tmp_path):
  modules = tmp_path / 'modules'
  shutil.copytree(configs.MODULES_DIR, modules, ignore=shutil.ignore_patterns('__pycache__'))
  original = module_files.fingerprint(str(modules))
  assert original == module_files.fingerprint(configs.MODULES_DIR)
  (modules / 'model.py').write_text((modules / 'model.py').read_text() + '\n# edited\n')
  edited = module_files.fingerprint(str(modules))
  (modules / 'model.py').rename(modules / 'model2.py')
  assert len({original, edited, module_files.fingerprint(str(modules))}) == 3


def test_a_run_does_not_import_tfx_v1():
  """What a local run imports (the runner, the pipeline, every component and module file) leaves
  out ``tfx.v1``: it also imports TFX's Google Cloud extensions, ~4 s and ~140 MiB per process.
  (In this test process, so it also fails when a test module imports tfx.v1.)"""
  for module in ('local_runner', 'pipeline.pipeline', 'tfx.orchestration.local.local_dag_runner',
                 'components.modules.trainer', 'components.modules.tuner',
                 'components.modules.preprocessing'):
    importlib.import_module(module)
  assert not {'tfx.v1', 'google.cloud.aiplatform'} & set(sys.modules)
