"""Runs a compiled Kubeflow V2 spec on this machine, task by task, for tests: no cluster, no image.

Each container task runs the command and arguments its executor has in the spec's deploymentSpec
(TFX's own entrypoint, ``python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor``,
and a ``lifecycle.preCacheCheck`` driver first where there is one), in dependency order, with
``{{$}}`` replaced by the ExecutorInput JSON that a KFP backend would build from the task's inputs
and outputs. What stands in for the cluster:

* the image: this checkout as its working directory and only entry on PYTHONPATH, the Python
  running this module, and ``stand_ins`` to map the image's paths (``/pipeline``) and the bucket
  (``gs://...``) in parameter values to local ones;
* the artifact store: folders under ``root``, one per run and task; each output artifact's folder
  exists before its task runs, as any prefix of a gs:// bucket does (so a component that writes
  with Python's ``open()``, which cannot reach gs://, is not caught here);
* the cluster's metadata, which answers the resolver tasks' queries (``outputArtifactQueries``):
  ``root/artifacts.json``, every output artifact of every run in the order they were written.
  A query that matches nothing gives the task's consumers an empty input (a cold start).

Not emulated: caching (every task runs), retries, and the backend's own checks of the spec.
"""
import dataclasses
import graphlib
import json
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

Artifact = Dict[str, Any]  # a RuntimeArtifact in its JSON form (name, type, uri, metadata)
_PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.artifacts\['(\w+)'\]\.metadata\['(\w+)'\]\}\}")


class TaskFailed(RuntimeError):
  """A task's process failed or wrote no executor output; the message ends with its log's tail."""


@dataclasses.dataclass
class TaskResult:
  outputs: Dict[str, List[Artifact]]
  seconds: float
  log: str


def schema_title(artifact_type: Mapping[str, str]) -> str:
  if 'schemaTitle' in artifact_type:
    return artifact_type['schemaTitle']
  return re.search(r'^title: (\S+)', artifact_type['instanceSchema'], re.M).group(1)


class ArtifactStore:
  """The cluster's metadata as far as the resolver tasks need it: artifacts in creation order."""

  def __init__(self, path: str):
    self._path = path
    self.artifacts: List[Artifact] = []
    if os.path.exists(path):
      with open(path) as f:
        self.artifacts = json.load(f)

  def add(self, artifacts: List[Artifact]) -> None:
    self.artifacts.extend(artifacts)
    with open(self._path, 'w') as f:
      json.dump(self.artifacts, f, indent=1)

  def query(self, text: str, inputs: Mapping[str, List[Artifact]]) -> List[Artifact]:
    """The latest LIVE artifact matching a resolver's filter (clauses joined by AND), if any."""
    clauses = []
    for clause in text.split(' AND '):
      key, value = (part.strip() for part in clause.split('=', 1))
      value = value.strip('"')
      for input_key, field in _PLACEHOLDER.findall(value):
        if not inputs.get(input_key):
          return []  # the upstream resolver found nothing: nothing to look up
        value = value.replace(f"{{{{$.inputs.artifacts['{input_key}'].metadata['{field}']}}}}",
                              str(inputs[input_key][0]['metadata'][field]))
      clauses.append((key, value))
    for artifact in reversed(self.artifacts):
      if all(self._field(artifact, key) == value for key, value in clauses):
        return [artifact]
    return []

  @staticmethod
  def _field(artifact: Artifact, key: str) -> str:
    if key == 'schema_title':
      return schema_title(artifact['type'])
    if key == 'state':
      return 'LIVE'
    if key == 'name':
      return artifact['name']
    match = re.fullmatch(r'metadata\.(\w+)\.(number|string)_value', key)
    if not match:
      raise ValueError(f'resolver filter field {key!r} is not emulated')
    value = artifact['metadata'].get(match.group(1))
    return f'{value:g}' if isinstance(value, (int, float)) else str(value)


def _map_paths(value: Any, stand_ins: Mapping[str, str]) -> Any:
  """A parameter value with each stand-in prefix of a path (alone or inside JSON) replaced."""
  if isinstance(value, dict):
    return {k: _map_paths(v, stand_ins) for k, v in value.items()}
  if not isinstance(value, str):
    return value
  for remote, local in stand_ins.items():
    value = re.sub(rf'(?<![\w/.:-]){re.escape(remote)}(?=/|"|$)', local, value)
  return value


def task_order(spec: Mapping[str, Any]) -> List[str]:
  """The DAG's tasks, each after every task it depends on or reads an artifact from."""
  graph = {}
  for name, task in spec['root']['dag']['tasks'].items():
    producers = {source['taskOutputArtifact']['producerTask']
                 for source in task.get('inputs', {}).get('artifacts', {}).values()}
    graph[name] = set(task.get('dependentTasks', [])) | producers
  return list(graphlib.TopologicalSorter(graph).static_order())


def run_spec(spec_path: str, root: str, stand_ins: Mapping[str, str], run_id: str,
             project_root: str, timeout_s: float = 900) -> Dict[str, TaskResult]:
  """Runs every task of the PipelineJob at ``spec_path``; raises TaskFailed at the first failure."""
  with open(spec_path) as f:
    spec = json.load(f)['pipelineSpec']
  store = ArtifactStore(os.path.join(root, 'artifacts.json'))
  results: Dict[str, TaskResult] = {}
  for name in task_order(spec):
    task = spec['root']['dag']['tasks'][name]
    component = spec['components'][task['componentRef']['name']]
    executor = spec['deploymentSpec']['executors'][component['executorLabel']]
    inputs = {key: results[source['taskOutputArtifact']['producerTask']].outputs[
        source['taskOutputArtifact']['outputArtifactKey']]
              for key, source in task.get('inputs', {}).get('artifacts', {}).items()}
    start = time.time()
    if 'resolver' in executor:
      outputs = {key: store.query(query['filter'], inputs)
                 for key, query in executor['resolver']['outputArtifactQueries'].items()}
      results[name] = TaskResult(outputs, time.time() - start, '')
      continue
    task_dir = os.path.join(root, run_id, name)
    outputs = {key: [{'name': f'{run_id}/{name}/{key}', 'type': output['artifactType'],
                      'uri': os.path.join(task_dir, key), 'metadata': {}}]
               for key, output in component.get('outputDefinitions', {}).get(
                   'artifacts', {}).items()}
    executor_input = _executor_input(task, inputs, outputs, task_dir, stand_ins)
    for artifacts in outputs.values():
      os.makedirs(artifacts[0]['uri'], exist_ok=True)
    log_path = os.path.join(task_dir, 'task.log')
    container = executor['container']
    steps = [container.get('lifecycle', {}).get('preCacheCheck'), container]
    for step in filter(None, steps):
      _run_container_step(step, executor_input, log_path, project_root, timeout_s, name)
    outputs = _read_executor_output(executor_input, outputs, log_path, name)
    store.add([a for artifacts in outputs.values() for a in artifacts])
    results[name] = TaskResult(outputs, time.time() - start, log_path)
  return results


def _executor_input(task: Mapping[str, Any], inputs: Mapping[str, List[Artifact]],
                    outputs: Mapping[str, List[Artifact]], task_dir: str,
                    stand_ins: Mapping[str, str]) -> Dict[str, Any]:
  """The ExecutorInput (JSON) that a KFP backend substitutes for ``{{$}}`` in the arguments."""
  parameters = task.get('inputs', {}).get('parameters', {})
  return {
      'inputs': {
          'parameters': {key: _map_paths(value['runtimeValue']['constantValue'], stand_ins)
                         for key, value in parameters.items()},
          'artifacts': {key: {'artifacts': value} for key, value in inputs.items()},
      },
      'outputs': {'artifacts': {key: {'artifacts': value} for key, value in outputs.items()},
                  'outputFile': os.path.join(task_dir, 'executor_output.json')},
  }


def _run_container_step(step: Mapping[str, Any], executor_input: Mapping[str, Any], log_path: str,
                        project_root: str, timeout_s: float, task: str) -> None:
  command = [sys.executable if part == 'python' else part for part in step['command']]
  args = [arg.replace('{{$}}', json.dumps(executor_input)) for arg in step['args']]
  # The image: the project at its WORKDIR, installed in place, and the Dockerfile's environment.
  env = dict(os.environ, PYTHONPATH=project_root, TF_USE_LEGACY_KERAS='1')
  with open(log_path, 'a') as log:
    try:
      code = subprocess.run(command + args, cwd=project_root, env=env, stdout=log,
                            stderr=subprocess.STDOUT, timeout=timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
      code = 'timeout'
  if code != 0:
    raise TaskFailed(f'task {task}: {" ".join(step["command"])} exited {code}\n{_tail(log_path)}')


def _read_executor_output(executor_input: Mapping[str, Any], outputs: Dict[str, List[Artifact]],
                          log_path: str, task: str) -> Dict[str, List[Artifact]]:
  """The task's output artifacts as the backend records them: updated from executor_output.json."""
  path = executor_input['outputs']['outputFile']
  if not os.path.exists(path):
    raise TaskFailed(f'task {task}: wrote no {path}\n{_tail(log_path)}')
  with open(path) as f:
    written = json.load(f).get('artifacts', {})
  for key, artifacts in outputs.items():
    for artifact, update in zip(artifacts, written.get(key, {}).get('artifacts', [])):
      artifact['metadata'].update(update.get('metadata', {}))
  return outputs


def _tail(log_path: str, lines: int = 15) -> str:
  with open(log_path) as f:
    return ''.join(f.readlines()[-lines:])


def main(argv: Optional[List[str]] = None) -> int:
  """python -m tests.kfp_local SPEC.json ROOT [REMOTE=LOCAL ...]: runs it, prints each task."""
  argv = sys.argv[1:] if argv is None else argv
  spec_path, root, pairs = argv[0], os.path.abspath(argv[1]), argv[2:]
  stand_ins = dict(pair.split('=', 1) for pair in pairs)
  project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    results = run_spec(spec_path, root, stand_ins, time.strftime('run-%Y%m%d-%H%M%S'),
                       project_root)
  except TaskFailed as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  for name, result in results.items():
    print(f'{name:55s} {result.seconds:6.1f} s  '
          f'{ {k: len(v) for k, v in result.outputs.items()} }')
  return 0


if __name__ == '__main__':
  sys.exit(main())
