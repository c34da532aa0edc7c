"""Compiles the image-classification pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (JSON).

    python kubeflow_runner.py --image us-docker.pkg.dev/PROJECT/REPO/cats-dogs-tfx:0.1.0 \\
        --data-root gs://BUCKET/flowers --class-names daisy,dandelion,rose,sunflower,tulip \\
        --layout class --pipeline-root gs://BUCKET/tfx --serving-dir gs://BUCKET/serving_model

Nothing runs here. Every component runs in a container of --image, built from the Dockerfile,
which holds the project at IMAGE_PROJECT_ROOT; the spec names the module files there. Building
the image and submitting the spec: README.md, "Running at scale".
"""
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import argparse
import os
import posixpath
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

from pipeline import configs
from pipeline import beam_presets
from runner import flags
from runner import local_resources
from runner import run_logging

# Where the Dockerfile copies the project (keep the two in step).
IMAGE_PROJECT_ROOT = '/pipeline'
# --layout: class folders only, or the split folders under the root.
CLASS_LAYOUT = 'class'


def _pipeline_name(text: str) -> str:
  if not re.fullmatch(r'[a-z0-9][a-z0-9-]{0,127}', text):
    raise argparse.ArgumentTypeError(f'{text!r} is not a Kubeflow pipeline name ([a-z0-9-])')
  return text


def _url(text: str) -> str:
  if '://' not in text:
    raise argparse.ArgumentTypeError(
        f'{text!r} is a local path; the containers need storage they all reach, e.g. gs://BUCKET/DIR')
  return text


def _layout(text: str) -> Tuple[str, ...]:
  """'class' -> (); 'train,validation,test' -> its split folders ('split': train,validation)."""
  from components.image_example_gen import layout as layout_lib  # pylint: disable=g-import-not-at-top
  if text == CLASS_LAYOUT:
    return ()
  folders = ('train,validation' if text == 'split' else text).split(',')
  if (folders[0] != layout_lib.TRAIN_FOLDER or len(folders) < 2
      or not set(folders) <= set(layout_lib.SPLIT_FOLDERS) or len(set(folders)) != len(folders)):
    raise argparse.ArgumentTypeError(
        f'{text!r} is neither "{CLASS_LAYOUT}" nor train followed by validation and/or test, '
        'e.g. train,validation,test')
  return tuple(folders)


def _class_names(text: str) -> Tuple[str, ...]:
  names = {name.strip() for name in text.split(',') if name.strip()}
  if len(names) < 2:
    raise argparse.ArgumentTypeError(f'{text!r} names fewer than two classes')
  # Sorted, as when the root is listed: a label id is the index of its class name.
  return tuple(sorted(names))


def build_parser() -> argparse.ArgumentParser:
  parser = flags.FlagParser(description=__doc__)
  kfp = parser.add_argument_group('Kubeflow')
  kfp.add_argument('--image', required=True,
                   help='image built from the Dockerfile and pushed where the cluster pulls from; '
                        'also the Beam workers\' image of the dataflow/flink/spark presets')
  kfp.add_argument('--output',
                   help='pipeline spec to write (default build/<pipeline name>.json)')
  kfp.add_argument('--pipeline-name', type=_pipeline_name,
                   help='name of the pipeline in Kubeflow, [a-z0-9-] (default: the data root\'s '
                        'folder name)')
  data = parser.add_argument_group('data and outputs')
  data.add_argument('--data-root', required=True,
                    help='image folder tree the containers read, e.g. gs://BUCKET/flowers: '
                         'ROOT/<class>/* or ROOT/train|validation|test/<class>/*')
  data.add_argument('--class-names', type=_class_names, metavar='NAME,NAME,...',
                    help='the class folder names, so that the data root is not listed here (needed '
                         'when this machine cannot read it); default: list the data root')
  data.add_argument('--layout', type=_layout,
                    help='with --class-names: "class", ROOT/<class>/*, or the split folders, e.g. '
                         '"train,validation,test" for ROOT/train|validation|test/<class>/* '
                         '(default "split": train,validation)')
  data.add_argument('--pipeline-root', type=_url, required=True,
                    help='artifacts, e.g. gs://BUCKET/tfx (metadata is the cluster\'s)')
  data.add_argument('--serving-dir', type=_url, required=True,
                    help='where blessed models are pushed, e.g. gs://BUCKET/serving_model')
  flags.add_setting_arguments(parser)
  beam_presets.add_arguments(parser)
  flags.add_execution_arguments(parser)
  return parser


def image_path(local_path: str) -> str:
  """Where a project file lies inside the image."""
  return posixpath.join(IMAGE_PROJECT_ROOT, os.path.relpath(local_path, configs.REPO_ROOT))


def data_layout(args: argparse.Namespace):
  """The layout from --class-names/--layout, else read from the data root here (names only)."""
  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import layout as layout_lib
  if args.class_names:
    split_folders = _layout('split') if args.layout is None else args.layout
    return layout_lib.ImageLayout(class_names=args.class_names, split_folders=split_folders)
  try:
    return layout_lib.detect_layout(args.data_root)
  except Exception as e:  # pylint: disable=broad-except
    # Remote roots fail here without credentials too, not only when the tree is wrong.
    raise layout_lib.DataLayoutError(
        f'{e}\n(to compile without reading the data root, pass --class-names and --layout)'
    ) from e


def config_from_args(args: argparse.Namespace) -> configs.PipelineConfig:
  return configs.PipelineConfig.for_recipe(
      args.recipe or configs.TRANSFER,
      orchestrator=configs.KUBEFLOW,
      data_root=args.data_root,
      pipeline_root=args.pipeline_root,
      serving_dir=args.serving_dir,
      # Kubeflow V2 pipeline names allow [a-z0-9-] only.
      pipeline_name=args.pipeline_name or configs.pipeline_name_of(args.data_root).replace('_', '-'),
      layout=data_layout(args),
      beam_pipeline_args=beam_presets.from_args(args, default_sdk_container_image=args.image),
      enable_cache=not args.no_cache,
      transform_module_file=image_path(configs.TRANSFORM_MODULE_FILE),
      trainer_module_file=image_path(configs.TRAINER_MODULE_FILE),
      tuner_module_file=image_path(configs.TUNER_MODULE_FILE),
      **local_resources.with_alpha_of_weights(flags.settings(args)))


def compile_pipeline(config: configs.PipelineConfig, image: str, output: str) -> Dict[str, Any]:
  """Writes the Kubeflow V2 PipelineJob JSON to ``output`` and returns it."""
  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from pipeline.pipeline import create_pipeline
  pipeline = create_pipeline(config)
  output = os.path.abspath(output)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image=image),
      output_dir=os.path.dirname(output),
      output_filename=os.path.basename(output))
  return runner.run(pipeline)


def main(argv: Optional[List[str]] = None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.layout is not None and not args.class_names:
    parser.error('--layout needs --class-names')
  run_logging.configure_logging(args.verbose)
  try:
    config = config_from_args(args)
    output = args.output or os.path.join('build', config.pipeline_name + '.json')
    compile_pipeline(config, args.image, output)
  except configs.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
    return 1
  if '://' not in config.data_root:
    print(f'note: the containers read the local path {config.data_root}; it must exist in them',
          file=sys.stderr)
  print(f'wrote {output} (image {args.image}, Beam {args.beam_preset})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
