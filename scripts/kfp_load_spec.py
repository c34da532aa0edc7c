"""Loads a compiled Kubeflow V2 spec with the official kfp 2.x SDK, as a cluster's client would.

    .venv-kfp/bin/python scripts/kfp_load_spec.py build/cats-dogs-tfx.json

Runs in .venv-kfp (`scripts/setup.sh kfp`), not in the project's environment: kfp 2.x needs
protobuf 4+, TFX 1.16 protobuf 3. It checks, in order, that
1. the file parses strictly (no unknown field) as a PipelineJob and its pipelineSpec as a
   PipelineSpec of the kfp-pipeline-spec that this kfp ships;
2. kfp's component loader reads the pipelineSpec as a pipeline component;
3. kfp's compiler accepts that component as a step of a kfp pipeline and compiles it;
4. every reference resolves (kfp's loader does not check): each task's component, each
   component's executor, each task input's producer task and its output key.
It prints one line and exits 0, or prints the error in one line and exits 1.
"""
import json
import os
import sys
import tempfile

import kfp
from google.protobuf import json_format
from kfp import compiler
from kfp import components
from kfp import dsl
from kfp.pipeline_spec import pipeline_spec_pb2


def check_references(spec: dict) -> None:
  """Raises ValueError on the first name in the DAG that points at nothing."""
  tasks, components_ = spec['root']['dag']['tasks'], spec['components']
  executors = spec['deploymentSpec']['executors']
  for name, task in tasks.items():
    component = components_.get(task['componentRef']['name'])
    if component is None:
      raise ValueError(f'task {name}: no component {task["componentRef"]["name"]!r}')
    if component['executorLabel'] not in executors:
      raise ValueError(f'task {name}: no executor {component["executorLabel"]!r}')
  for name, task in tasks.items():
    for key, source in task.get('inputs', {}).get('artifacts', {}).items():
      producer = source['taskOutputArtifact']
      task_name, output_key = producer['producerTask'], producer['outputArtifactKey']
      outputs = (components_[tasks[task_name]['componentRef']['name']]
                 .get('outputDefinitions', {}).get('artifacts', {}) if task_name in tasks else {})
      if output_key not in outputs:
        raise ValueError(f'task {name}: input {key} names no output {task_name}.{output_key}')


def load(path: str) -> str:
  """Loads the spec at ``path``; returns a one-line summary, raises on the first problem."""
  with open(path) as f:
    job = json.load(f)
  json_format.ParseDict(job, pipeline_spec_pb2.PipelineJob())
  spec = json_format.ParseDict(job['pipelineSpec'], pipeline_spec_pb2.PipelineSpec())
  check_references(job['pipelineSpec'])
  component = components.load_component_from_text(json.dumps(job['pipelineSpec']))

  @dsl.pipeline(name='kfp-load-check')
  def wrapper():
    component()

  with tempfile.TemporaryDirectory() as tmp:
    compiler.Compiler().compile(wrapper, os.path.join(tmp, 'wrapper.yaml'))
  return (f'kfp {kfp.__version__} loaded {component.name}: {len(spec.root.dag.tasks)} tasks, '
          f'{len(spec.deployment_spec["executors"])} executors, schema {spec.schema_version}, '
          f'compiled as a sub-pipeline')


def main(argv) -> int:
  if len(argv) != 1:
    print(f'usage: {sys.argv[0]} SPEC.json', file=sys.stderr)
    return 2
  try:
    print(load(argv[0]))
  except Exception as e:  # pylint: disable=broad-except
    print(f'error: {argv[0]}: {type(e).__name__}: {e}'.replace('\n', ' '), file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
