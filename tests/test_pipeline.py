"""create_pipeline: the components, their order, and the Evaluator's gate."""
import json
import os

from google.protobuf import json_format
from PIL import Image
import tensorflow_model_analysis as tfma

from pipeline import configs
from pipeline.pipeline import create_pipeline
from tests.trees import SAMPLE_DATA


def _config(tmp_path, data_root=SAMPLE_DATA, **overrides):
  return configs.PipelineConfig(data_root=data_root, pipeline_root=str(tmp_path / 'root'),
                                serving_dir=str(tmp_path / 'serving'), **overrides)


def _eval_config(pipeline) -> tfma.EvalConfig:
  evaluator = next(c for c in pipeline.components if c.id == 'Evaluator')
  return json_format.Parse(evaluator.exec_properties['eval_config'], tfma.EvalConfig())


def test_components_and_data_checks_before_training(tmp_path):
  pipeline = create_pipeline(_config(tmp_path, accuracy_threshold=0.93))
  by_id = {c.id: c for c in pipeline.components}
  assert set(by_id) == {'ImageExampleGen', 'StatisticsGen', 'SchemaGen', 'LabelBalance',
                        'ExampleValidator', 'Transform', 'Trainer',
                        'latest_blessed_model_resolver', 'Evaluator', 'Pusher'}
  assert {'LabelBalance', 'ExampleValidator'} <= {
      node.id for node in by_id['Transform'].upstream_nodes}
  assert json.loads(by_id['Evaluator'].exec_properties['example_splits']) == ['test']
  trainer_config = json.loads(by_id['Trainer'].exec_properties['custom_config'])
  assert trainer_config['class_names'] == ['cats', 'dogs']  # label id i -> class_names[i]
  threshold = _eval_config(pipeline).metrics_specs[0].metrics[1].threshold
  assert threshold.value_threshold.lower_bound.value == 0.93
  assert threshold.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
  assert pipeline.metadata_connection_config.sqlite.filename_uri == str(
      tmp_path / 'root' / 'metadata.sqlite')


def test_one_vs_rest_metrics_cover_every_class(tmp_path):
  for name in ('birds', 'cats', 'dogs'):
    os.makedirs(tmp_path / 'data' / name)
    Image.new('RGB', (8, 8)).save(tmp_path / 'data' / name / 'a.png')
  pipeline = create_pipeline(_config(tmp_path, data_root=str(tmp_path / 'data')))
  binarize = _eval_config(pipeline).metrics_specs[1].binarize
  assert list(binarize.class_ids.values) == [0, 1, 2]
