"""kubeflow_runner compiles offline into a Kubeflow V2 spec that wires, configures and images every step."""
import json
import os
import re

import pytest

import kubeflow_runner
from tests.trees import SAMPLE_DATA

IMAGE = 'us-docker.pkg.dev/proj/repo/cats-dogs-tfx:test'
WEIGHTS = 'gs://bucket/weights/mobilenet_v2_1.0_no_top.h5'  # read by the containers only
PIPELINE_ROOT = 'gs://bucket/tfx'
SERVING_DIR = 'gs://bucket/serving_model'
RESOLVER = 'latest_blessed_model_resolver'
BASELINE_RESOLVER = 'baseline_statistics_resolver'
# Each component's upstream components in the pipeline (shared with test_airflow_dag).
UPSTREAM = {
    'ImageExampleGen': set(),
    'StatisticsGen': {'ImageExampleGen'},
    'SchemaGen': {'StatisticsGen'},
    'ImageSchema': {'SchemaGen'},
    'LabelBalance': {'StatisticsGen'},
    'ExampleValidator': {'StatisticsGen', 'ImageSchema'},
    BASELINE_RESOLVER: set(),
    'DistributionValidator': {'StatisticsGen', BASELINE_RESOLVER},
    'DriftGate': {'DistributionValidator'},
    'AcceptedStatistics': {'StatisticsGen', 'DriftGate'},
    'EmbeddingDriftGate': {'ImageExampleGen', RESOLVER},
    'Transform': {'ImageExampleGen', 'ImageSchema', 'LabelBalance', 'ExampleValidator',
                  'DriftGate', 'EmbeddingDriftGate'},
    'FeatureExtractor': {'Transform'},
    'BaseFeatures': {'ImageExampleGen', 'FeatureExtractor'},
    'DataQuality': {'BaseFeatures'},
    'Tuner': {'BaseFeatures', 'DataQuality'},
    'Trainer': {'BaseFeatures', 'DataQuality', 'ImageSchema', 'Transform', 'Tuner'},
    RESOLVER: set(),
    'Evaluator': {'ImageExampleGen', 'Trainer', RESOLVER},
    'TFLiteCheck': {'ImageExampleGen', 'Transform', 'Trainer', 'Evaluator'},
    'Pusher': {'Trainer', 'Evaluator', 'TFLiteCheck'},
}
# Kubeflow V2 compiles the latest-blessed-model resolver into two resolver tasks, the baseline's
# (a latest-artifact resolver) into one.
KFP_RESOLVER_TASKS = {f'{RESOLVER}-model-resolver', f'{RESOLVER}-model-blessing-resolver',
                      BASELINE_RESOLVER}
DATAFLOW_ARGS = ['--runner=DataflowRunner', '--project=proj', '--region=europe-west4',
                 '--temp_location=gs://bucket/tmp', f'--sdk_container_image={IMAGE}']


def _compile(tmp_path, *flags):
  output = tmp_path / 'spec.json'
  code = kubeflow_runner.main([
      '--image', IMAGE, '--pipeline-root', PIPELINE_ROOT, '--serving-dir', SERVING_DIR,
      '--output', str(output), *flags])
  assert code == 0
  return json.loads(output.read_text())['pipelineSpec']


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
  return _compile(
      tmp_path_factory.mktemp('kfp'), '--data-root', SAMPLE_DATA, '--weights', WEIGHTS,
      '--beam-preset', 'dataflow', '--dataflow-project', 'proj', '--dataflow-region',
      'europe-west4', '--temp-location', 'gs://bucket/tmp', '--beam-arg=--max_num_workers=4')


def _parameter(spec, task, name):
  return spec['root']['dag']['tasks'][task]['inputs']['parameters'][name]['runtimeValue'][
      'constantValue']['stringValue']


def test_every_component_is_a_task_with_its_upstream_tasks(spec):
  tasks = spec['root']['dag']['tasks']
  assert set(tasks) == (set(UPSTREAM) - {RESOLVER}) | KFP_RESOLVER_TASKS
  for name, upstream in UPSTREAM.items():
    if name != RESOLVER:
      expected = {f'{RESOLVER}-model-resolver' if u == RESOLVER else u for u in upstream}
      assert set(tasks[name].get('dependentTasks', [])) == expected, name


def test_every_component_runs_in_the_image(spec):
  executors = spec['deploymentSpec']['executors']
  containers = [e['container'] for e in executors.values() if 'container' in e]
  assert len(containers) == len(UPSTREAM) - 2  # the resolvers run in the backend
  assert {c['image'] for c in containers} == {IMAGE}


@pytest.mark.parametrize('component', ['ImageExampleGen', 'StatisticsGen', 'Transform',
                                       'BaseFeatures', 'Evaluator'])
def test_beam_components_get_the_preset_and_extra_args(spec, component):
  args = spec['deploymentSpec']['executors'][f'{component}_executor']['container']['args']
  assert args[-len(DATAFLOW_ARGS) - 1:] == DATAFLOW_ARGS + ['--max_num_workers=4']


def test_module_files_and_paths_are_the_images_and_the_buckets(spec):
  root = kubeflow_runner.IMAGE_PROJECT_ROOT
  assert _parameter(spec, 'Transform', 'module_file') == f'{root}/components/modules/preprocessing.py'
  assert _parameter(spec, 'Trainer', 'module_file') == f'{root}/components/modules/trainer.py'
  assert _parameter(spec, 'Tuner', 'module_file') == f'{root}/components/modules/tuner.py'
  assert SERVING_DIR in _parameter(spec, 'Pusher', 'push_destination')
  assert _parameter(spec, 'ImageExampleGen', 'input_base') == SAMPLE_DATA
  trainer_config = json.loads(_parameter(spec, 'Trainer', 'custom_config'))
  assert (trainer_config['image_size'], trainer_config['weights']) == (160, WEIGHTS)  # transfer
  assert _parameter(spec, 'FeatureExtractor', 'weights') == WEIGHTS


def test_the_pipeline_name_comes_from_the_data_root(tmp_path):
  spec = _compile(tmp_path, '--data-root', 'gs://bucket/My_Flowers', '--class-names',
                  'rose,tulip', '--layout', 'train,validation,test')
  assert spec['pipelineInfo']['name'] == 'my-flowers'
  input_config = json.loads(_parameter(spec, 'ImageExampleGen', 'input_config'))
  assert input_config['splits'][0]['pattern'] == '*/*/*'
  custom_config = json.loads(_parameter(spec, 'ImageExampleGen', 'custom_config'))
  assert custom_config['custom_config']['value']['split_folders'] == ['train', 'validation', 'test']


def test_dockerfile_puts_the_project_where_the_spec_looks():
  with open(os.path.join(os.path.dirname(kubeflow_runner.__file__), 'Dockerfile')) as f:
    dockerfile = f.read()
  assert re.search(rf'^COPY \. {kubeflow_runner.IMAGE_PROJECT_ROOT}$', dockerfile, re.M)


def test_class_names_compile_without_reading_the_data_root(tmp_path):
  spec = _compile(tmp_path, '--data-root', 'gs://bucket/unlistable', '--class-names', 'dogs,cats',
                  '--layout', 'class')
  input_config = json.loads(_parameter(spec, 'ImageExampleGen', 'input_config'))
  assert input_config['splits'][0]['pattern'] == '*/*'  # class folders right under the root
  custom_config = json.loads(_parameter(spec, 'ImageExampleGen', 'custom_config'))
  assert custom_config['custom_config']['value']['class_names'] == ['cats', 'dogs']  # sorted


@pytest.mark.parametrize('flags, message', [
    (['--pipeline-root', 'runs/root'], 'is a local path'),
    (['--class-names', 'cats'], 'fewer than two classes'),
    (['--layout', 'class'], '--layout needs --class-names'),
    (['--class-names', 'a,b', '--layout', 'validation,test'], 'neither "class" nor train'),
    (['--pipeline-name', 'cats_dogs'], 'not a Kubeflow pipeline name'),
])
def test_bad_flags_are_usage_errors(capsys, flags, message):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.main(['--image', IMAGE, '--data-root', SAMPLE_DATA, '--pipeline-root',
                          PIPELINE_ROOT, '--serving-dir', SERVING_DIR, *flags])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize('flags, message, status', [
    # A setting that cannot work is a usage error (2); a data root that cannot be read, 1.
    (['--data-root', SAMPLE_DATA, '--beam-preset', 'dataflow'], '--dataflow-project', 2),
    (['--data-root', SAMPLE_DATA, '--test-fraction', '1'], '--test-fraction: 1.0 is not', 2),
    (['--data-root', '/nonexistent/images'], 'pass --class-names and --layout', 1),
])
def test_bad_values_fail_with_one_line_and_no_traceback(tmp_path, capsys, flags, message, status):
  code = kubeflow_runner.main(['--image', IMAGE, '--pipeline-root', PIPELINE_ROOT, '--serving-dir',
                               SERVING_DIR, '--output', str(tmp_path / 'spec.json'), *flags])
  err = capsys.readouterr().err
  assert code == status and message in err and 'Traceback' not in err
  assert not (tmp_path / 'spec.json').exists()
