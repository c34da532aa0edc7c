"""What the flags name, checked on this machine before minutes of work are spent: the data set
downloaded (--dataset), the weights file read for its width and checked against the model, the data
root's layout read, the output folders kept out of the input images, and the files counted for the
Beam preset. Parsing is runner/flags.py's; this is the step after it that touches files.
"""
import argparse
import dataclasses
import os
from typing import Dict, Optional

from components.image_example_gen import file_tree
from components.modules import model_variants
from components.modules import weights_file
from data import download
from pipeline import beam_presets
from pipeline import configs
from runner import flags


def with_alpha_of_weights(settings_given: Dict[str, object]) -> Dict[str, object]:
  """``settings_given`` with --alpha read from a local --weights file when not given: the file's
  width is the only one it fits (components/modules/weights_file.py)."""
  weights = settings_given.get('weights')
  if settings_given.get('alpha') is None and weights and os.path.isfile(weights):
    return {**settings_given, 'alpha': weights_file.alpha_of(weights)}
  return settings_given


def local_config(args: argparse.Namespace, orchestrator: str = configs.LOCAL
                 ) -> configs.PipelineConfig:
  """local_parser's flags -> a checked PipelineConfig for ``orchestrator`` (the local runner or
  Airflow), its local resources checked too (``check_local_resources``); raises ConfigError
  before any work (and before --dataset is downloaded)."""
  if args.data_root and args.dataset:
    raise configs.ConfigError('--data-root and --dataset both name the data; pass one')
  # --dataset: the sample stands in until the data set is downloaded, once the flags are checked.
  data_root = os.path.abspath(args.data_root) if args.data_root else flags.SAMPLE_ROOT
  sample = not args.dataset and os.path.realpath(data_root) == os.path.realpath(flags.SAMPLE_ROOT)
  recipe = args.recipe or (configs.SCRATCH if sample else configs.TRANSFER)
  settings_given = with_alpha_of_weights(flags.settings(args))
  name = args.pipeline_name or configs.pipeline_name_of(args.dataset or data_root)
  folder = flags.run_dir(name)
  config = configs.PipelineConfig.for_recipe(
      recipe, orchestrator=orchestrator, data_root=data_root, pipeline_name=name,
      pipeline_root=os.path.abspath(args.pipeline_root or os.path.join(folder, 'pipeline_root')),
      serving_dir=os.path.abspath(args.serving_dir or os.path.join(folder, 'serving_model')),
      enable_cache=not args.no_cache, **settings_given)
  if args.dataset:
    config = dataclasses.replace(config, data_root=download.fetch())
  return dataclasses.replace(
      check_local_resources(config),
      beam_pipeline_args=beam_presets.from_args(args, input_images=count_files(config.data_root)))


def count_files(data_root: str) -> Optional[int]:
  """How many files a local data root holds; None where that is unknown (an object store, or a
  folder ImageExampleGen will refuse with the reason)."""
  try:
    return len(file_tree.walk_files(data_root)) if os.path.isdir(data_root) else None
  except file_tree.LinkLoopError:
    return None


def _inside(path: str, folder: str) -> bool:
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return os.path.commonpath([path, folder]) == folder


def check_local_resources(config: configs.PipelineConfig) -> configs.PipelineConfig:
  """The config with its data root's layout, once checked against this machine's files before
  minutes of work are spent: outputs that would land among the input images, a weights file that
  is missing or does not fit the model, a data root that is not a tree of class folders
  (DataLayoutError)."""
  for flag, path in (('--pipeline-root', config.pipeline_root), ('--serving-dir', config.serving_dir)):
    if _inside(path, config.data_root):
      raise configs.ConfigError(
          f'{flag} {path} is inside the data root {config.data_root}; the next run would read its '
          'files as images. Put it elsewhere.')
    if os.path.exists(path) and not os.path.isdir(path):
      raise configs.ConfigError(f'{flag} {path} exists and is not a folder')
  weights = config.weights
  if weights != 'imagenet' and weights.lower() != 'none' and '://' not in weights and (
      not os.path.isfile(weights)):
    raise configs.ConfigError(f'--weights {weights}: no such file; pass "imagenet" (download), '
                              '"none", or a MobileNetV2 no_top .h5 file')
  if config.model == model_variants.MOBILENET_V2 and os.path.isfile(weights):
    try:
      weights_file.check(weights, config.alpha)
    except weights_file.WeightsFileError as e:
      raise configs.ConfigError(str(e)) from e
  # Here, not at the top: layout reads roots with tf.io.gfile, and importing TensorFlow before the
  # runner has configured logging gives TensorFlow's logger a handler of its own (its INFO lines).
  from components.image_example_gen import layout as layout_lib  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(config, layout=layout_lib.detect_layout(config.data_root))
