"""The compiled Kubeflow V2 spec loads in the official kfp SDK and runs task by task here.

The SDK check runs scripts/kfp_load_spec.py in .venv-kfp (`make setup-kfp`); the run executes
every task through TFX's own container entrypoint with tests/kfp_local.py, on the embedded sample.
"""
import json
import os
import re
import subprocess

import pytest

import kubeflow_runner
from tests import kfp_local
from tests.conftest import WEIGHTS_035, require_shared
from tests.trees import SAMPLE_DATA

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KFP_PYTHON = os.path.join(REPO_ROOT, '.venv-kfp', 'bin', 'python')
LOAD_SCRIPT = os.path.join(REPO_ROOT, 'scripts', 'kfp_load_spec.py')
BUCKET = 'gs://kfp-local'
# Tiny training and an accuracy gate every model passes, so that the run reaches a push.
RESOLVERS = {'baseline_statistics_resolver': 'statistics',
             'latest_blessed_model_resolver-model-blessing-resolver': 'model_blessing',
             'latest_blessed_model_resolver-model-resolver': 'model'}
# Outputs that a cold start leaves empty: no baseline to compare with, no analyzer cache.
EMPTY_ON_A_COLD_START = {'DistributionValidator/anomalies', 'Transform/updated_analyzer_cache'}
# The transfer recipe (the base's features, the Tuner) with the small pretrained base at 64 px (at 32
# px its features of the synthetic shapes are too coarse: distinct pictures look like copies).
FAST_FLAGS = ['--weights', WEIGHTS_035, '--image-size', '64', '--epochs', '3', '--tuner-trials',
              '2', '--gate-threshold', '0', '--beam-arg=--direct_running_mode=in_memory']


@pytest.fixture(scope='module')
def spec_path(tmp_path_factory):
  require_shared(WEIGHTS_035)
  path = str(tmp_path_factory.mktemp('kfp') / 'spec.json')
  assert kubeflow_runner.main([
      '--image', 'cats-dogs-tfx:test', '--data-root', SAMPLE_DATA, '--pipeline-root',
      f'{BUCKET}/tfx', '--serving-dir', f'{BUCKET}/serving', '--output', path,
      *FAST_FLAGS]) == 0
  return path


def _load_with_kfp(path):
  require_shared(KFP_PYTHON, 'the kfp SDK: make setup-kfp')
  return subprocess.run([KFP_PYTHON, LOAD_SCRIPT, path], capture_output=True, text=True,
                        timeout=120, check=False)


def test_kfp_sdk_loads_the_spec(spec_path):
  done = _load_with_kfp(spec_path)
  assert done.returncode == 0, done.stderr
  assert 'loaded sample: 22 tasks, 22 executors' in done.stdout


@pytest.mark.parametrize('corrupt, message', [
    (lambda s: s['root']['dag']['tasks']['Trainer']['componentRef'].update(nam='x'),
     'has no field named "nam"'),
    (lambda s: s['root']['dag']['tasks']['Trainer']['componentRef'].update(name='Trainerx'),
     "task Trainer: no component 'Trainerx'"),
    (lambda s: s['root']['dag']['tasks']['Pusher']['inputs']['artifacts']['model'][
        'taskOutputArtifact'].update(outputArtifactKey='modle'),
     'task Pusher: input model names no output Trainer.modle'),
])
def test_kfp_sdk_check_rejects_a_broken_spec_in_one_line(spec_path, tmp_path, corrupt, message):
  with open(spec_path) as f:
    job = json.load(f)
  corrupt(job['pipelineSpec'])
  broken = tmp_path / 'broken.json'
  broken.write_text(json.dumps(job))
  done = _load_with_kfp(str(broken))
  assert done.returncode == 1 and message in done.stderr
  assert len(done.stderr.strip().splitlines()) == 1


def _artifact(name, title, **metadata):
  return {'name': name, 'type': {'schemaTitle': title}, 'uri': f'/store/{name}',
          'metadata': metadata}


def test_resolver_queries_find_the_latest_match_and_nothing_on_a_cold_start(tmp_path):
  store = kfp_local.ArtifactStore(str(tmp_path / 'artifacts.json'))
  statistics = 'schema_title="tfx.ExampleStatistics" AND state=LIVE'
  blessing = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
  model = ('schema_title="tfx.Model" AND state=LIVE AND '
           "name=\"{{$.inputs.artifacts['input'].metadata['current_model_id']}}\"")
  assert store.query(statistics, {}) == [] and store.query(blessing, {}) == []
  assert store.query(model, {'input': []}) == []
  store.add([_artifact('r1/StatisticsGen/statistics', 'tfx.ExampleStatistics'),
             _artifact('r1/Trainer/model', 'tfx.Model'),
             _artifact('r1/Evaluator/blessing', 'tfx.ModelBlessing', blessed=1.0,
                       current_model_id='r1/Trainer/model'),
             _artifact('r2/Trainer/model', 'tfx.Model'),
             _artifact('r2/Evaluator/blessing', 'tfx.ModelBlessing', blessed=0.0,
                       current_model_id='r2/Trainer/model')])
  assert [a['name'] for a in store.query(statistics, {})] == ['r1/StatisticsGen/statistics']
  [blessed] = store.query(blessing, {})
  assert blessed['name'] == 'r1/Evaluator/blessing'
  assert [a['name'] for a in store.query(model, {'input': [blessed]})] == ['r1/Trainer/model']


def test_task_order_puts_every_task_after_its_inputs(spec_path):
  with open(spec_path) as f:
    spec = json.load(f)['pipelineSpec']
  order = kfp_local.task_order(spec)
  assert sorted(order) == sorted(spec['root']['dag']['tasks'])
  assert order.index('ImageExampleGen') < order.index('StatisticsGen') < order.index('Transform')
  assert order.index('latest_blessed_model_resolver-model-blessing-resolver') < order.index(
      'latest_blessed_model_resolver-model-resolver') < order.index('Evaluator')


def test_a_task_whose_executor_does_not_import_fails_with_the_import_error(spec_path, tmp_path):
  with open(spec_path) as f:
    job = json.load(f)
  spec = job['pipelineSpec']
  # Only the first task, with its executor class moved away: the container fails on import.
  spec['root']['dag']['tasks'] = {'ImageExampleGen': spec['root']['dag']['tasks']['ImageExampleGen']}
  args = spec['deploymentSpec']['executors']['ImageExampleGen_executor']['container']['args']
  args[args.index('--executor_class_path') + 1] = 'components.image_example_gen.moved.Executor'
  broken = tmp_path / 'broken.json'
  broken.write_text(json.dumps(job))
  with pytest.raises(kfp_local.TaskFailed) as failure:
    kfp_local.run_spec(str(broken), str(tmp_path), {}, 'run-1', REPO_ROOT)
  assert "task ImageExampleGen: python -m tfx.orchestration.kubeflow.v2" in str(failure.value)
  assert ('ImportError: Could not import components.image_example_gen.moved.Executor'
          in str(failure.value))


def _image_project_root():
  """Where the Dockerfile puts the project: the image's paths in the spec stand for this checkout."""
  with open(os.path.join(REPO_ROOT, 'Dockerfile')) as f:
    return re.search(r'^COPY \. (\S+)$', f.read(), re.M).group(1)


@pytest.fixture(scope='module')
def cold_start_run(spec_path, tmp_path_factory):
  root = tmp_path_factory.mktemp('kfp-run')
  stand_ins = {BUCKET: str(root / 'bucket'), _image_project_root(): REPO_ROOT}
  results = kfp_local.run_spec(spec_path, str(root), stand_ins, 'run-1', REPO_ROOT)
  return root, results


@pytest.mark.e2e
def test_every_task_runs_through_the_tfx_container_entrypoint(spec_path, cold_start_run):
  root, results = cold_start_run
  with open(spec_path) as f:
    tasks = json.load(f)['pipelineSpec']['root']['dag']['tasks']
  assert set(results) == set(tasks)
  for name, result in results.items():
    if name in RESOLVERS:
      continue
    with open(root / 'run-1' / name / 'executor_output.json') as f:
      written = json.load(f)['artifacts']
    assert set(written) == set(result.outputs), name
    for key, [artifact] in result.outputs.items():
      assert artifact['uri'] == written[key]['artifacts'][0]['uri']
      assert os.listdir(artifact['uri']) or f'{name}/{key}' in EMPTY_ON_A_COLD_START, (name, key)


@pytest.mark.e2e
def test_a_cold_start_resolves_nothing_and_still_blesses_and_pushes(cold_start_run):
  root, results = cold_start_run
  assert {name: results[name].outputs[key] for name, key in RESOLVERS.items()} == {
      name: [] for name in RESOLVERS}
  assert results['DriftGate'].outputs['report'][0]['metadata']['has_baseline'] == 0
  blessing = results['Evaluator'].outputs['blessing'][0]['metadata']
  assert blessing['blessed'] == 1 and 'baseline_model_id' not in blessing
  [pushed] = results['Pusher'].outputs['pushed_model']
  assert pushed['metadata']['pushed'] == 1
  assert pushed['metadata']['pushed_destination'].startswith(str(root / 'bucket' / 'serving'))
  assert os.path.exists(os.path.join(pushed['metadata']['pushed_destination'], 'saved_model.pb'))


@pytest.mark.e2e
def test_the_next_run_resolves_this_runs_accepted_statistics_and_blessed_model(
    spec_path, cold_start_run):
  root, results = cold_start_run
  with open(spec_path) as f:
    executors = json.load(f)['pipelineSpec']['deploymentSpec']['executors']
  store = kfp_local.ArtifactStore(str(root / 'artifacts.json'))

  def resolve(task, inputs=None):
    [query] = executors[f'{task}_executor']['resolver']['outputArtifactQueries'].values()
    return [a['name'] for a in store.query(query['filter'], inputs or {})]

  assert resolve('baseline_statistics_resolver') == ['run-1/AcceptedStatistics/accepted']
  blessing = resolve('latest_blessed_model_resolver-model-blessing-resolver')
  assert blessing == ['run-1/Evaluator/blessing']
  assert resolve('latest_blessed_model_resolver-model-resolver',
                 {'input': results['Evaluator'].outputs['blessing']}) == ['run-1/Trainer/model']
