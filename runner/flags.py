"""The command-line flags of every entry point, and the PipelineConfig they build.

``local_runner.py`` and ``airflow_dag.py`` use ``local_parser`` (and runner/local_resources.py's
``local_config``, which checks what the flags name on this machine);
``kubeflow_runner.py`` adds its own data and image flags to ``add_setting_arguments``;
``validate.py`` takes the drift flags. A flag only parses text into a value: its default and its
check are PipelineConfig's (pipeline/configs.py), so a flag left out is None here and the config's
default (or the recipe's) applies.
"""
import argparse
import dataclasses
import os
from typing import Dict, Optional

from components.drift.drift_thresholds import ON_DRIFT_CHOICES, DriftThresholds
from components.modules import features
from components.modules import model_variants
from pipeline import beam_presets
from pipeline import blessing_gate
from pipeline import configs

SAMPLE_ROOT = os.path.join(configs.REPO_ROOT, 'data', 'sample')
SAMPLE_PIPELINE_NAME = configs.pipeline_name_of(SAMPLE_ROOT)
# --dataset: the data sets this project downloads (data/download.py).
DOWNLOADABLE = ('cats_and_dogs_filtered',)


class FlagError(ValueError):
  """A flag that cannot be parsed (raised instead of exiting by ``FlagParser(raise_errors=True)``)."""


class FlagParser(argparse.ArgumentParser):
  """argparse's parser, whose errors are one line (``PROG: error: ...``, exit status 2) instead of
  the usage and the error; with ``raise_errors`` a bad flag raises FlagError instead, for callers
  that report errors their own way (the Airflow DAG)."""

  def __init__(self, *args, raise_errors: bool = False, **kwargs):
    kwargs.setdefault('formatter_class', argparse.RawDescriptionHelpFormatter)
    super().__init__(*args, **kwargs)
    self._raise_errors = raise_errors

  def error(self, message: str):
    if self._raise_errors:
      raise FlagError(message)
    self.exit(2, f'{self.prog}: error: {message} (--help lists the flags)\n')


def _split_ratios(text: str) -> Dict[str, int]:
  try:
    ratios = [int(part) for part in text.split(',')]
  except ValueError:
    ratios = []
  if len(ratios) != len(features.SPLIT_NAMES):
    raise argparse.ArgumentTypeError(f'{text!r} is not three positive integers TRAIN,EVAL,TEST')
  return dict(zip(features.SPLIT_NAMES, ratios))


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
  """The drift flags (a 'data drift' group) of the runners and validate.py."""
  defaults = DriftThresholds()
  group = parser.add_argument_group('data drift (new data against the baseline)')
  for name, text in (
      ('label_linf', 'largest accepted L-infinity distance of the label distribution'),
      ('categorical_linf', 'same for the image format and colour mode'),
      ('numeric_js', 'largest accepted Jensen-Shannon divergence of the numeric image features: '
                     'size, file size, brightness...'),
      ('embedding_p_value', 'embedding drift needs an MMD permutation p-value below this...'),
      ('embedding_auc', '...and a domain classifier ROC AUC at least this, on the model\'s '
                        'embeddings of new vs training images'),
      ('confidence_js', 'largest accepted Jensen-Shannon divergence of the model\'s confidence '
                        'histogram (new images vs its held-out eval images)')):
    group.add_argument(configs.flag_of('drift_' + name), type=float,
                       help=f'{text} (default {getattr(defaults, name)})')
  group.add_argument('--on-drift', choices=ON_DRIFT_CHOICES,
                     help='"fail" stops the run before training when the data drifted from the '
                          'baseline; "warn" logs the report and trains (default '
                          f'{configs.default("on_drift")})')


def drift_settings(args: argparse.Namespace) -> Dict[str, object]:
  """PipelineConfig's drift fields from add_drift_arguments' flags, checked."""
  given = {field.name: getattr(args, f'drift_{field.name}')
           for field in dataclasses.fields(DriftThresholds)}
  thresholds = DriftThresholds(**{k: v for k, v in given.items() if v is not None})
  on_drift = args.on_drift or configs.default('on_drift')
  configs.check_drift_settings(thresholds, on_drift)
  return dict(drift_thresholds=thresholds, on_drift=on_drift)


def add_setting_arguments(parser: argparse.ArgumentParser) -> None:
  """The data-check, model and drift flags that every runner shares."""
  checks = parser.add_argument_group('data checks')
  for name, kind, text in (
      ('test_fraction', float, 'share of validation/ held out as the test split when there is no '
                               'test/ folder, 0 < x < 1'),
      ('warn_class_ratio', float, "warn when the training split's max/min images per class "
                                  'exceeds this (class weights compensate), >= 1'),
      ('max_class_ratio', float, "fail when the training split's max/min images per class "
                                 'exceeds this, >= 1'),
      ('min_class_images', int, 'fail when a class has fewer training images than this'),
      ('max_skipped_fraction', float, 'fail when more than this share of files are not images, '
                                      '0 to 1'),
      ('max_leak_fraction', float, 'fail before training when more than this share of the eval '
                                   'and test images duplicate training images (a leak); below, '
                                   'warn, 0 to 1')):
    checks.add_argument(configs.flag_of(name), type=kind,
                        help=f'{text} (default {configs.default(name)})')
  for name, text in (
      ('max_image_pixels', 'skip (refuse in serving) an image whose header declares more pixels'),
      ('max_image_bytes', 'skip (refuse in serving) an image file of more bytes')):
    checks.add_argument(configs.flag_of(name), type=int,
                        help=f'{text} (default {configs.default(name)})')
  checks.add_argument('--split-ratios', type=_split_ratios, metavar='TRAIN,EVAL,TEST',
                      help='weights of the hash split of a root with class folders only; with '
                           'train/ and test/ but no validation/, TRAIN:EVAL carves eval out of '
                           'train/ (default '
                           + ','.join(map(str, configs.default('split_ratios').values())) + ')')
  model = parser.add_argument_group('model and training (defaults depend on the recipe)')
  model.add_argument('--recipe', choices=list(configs.RECIPES),
                     help=f'"{configs.TRANSFER}": a frozen pretrained MobileNetV2 (--weights) whose '
                          'head is tuned and trained on its features (default for your images); '
                          f'"{configs.SCRATCH}": a small MobileNetV2 trained from scratch, no '
                          'pretrained weights needed (default for the embedded sample)')
  model.add_argument(
      '--model', choices=list(model_variants.VARIANTS),
      help="one of the tutorial's models: " + '; '.join(
          f'{v.name} = model {v.tutorial_number}, {v.description}'
          for v in model_variants.VARIANTS.values())
      + f'. The CNNs train at learning rate {model_variants.CNN_LEARNING_RATE:g} (adam\'s '
      'default, as the tutorial) unless --learning-rate is given')
  model.add_argument('--weights', help='mobilenet_v2 only: "imagenet" (Keras download), "none", '
                     'or a no_top .h5 file')
  model.add_argument('--alpha', type=float,
                     help='mobilenet_v2 only: MobileNetV2 width multiplier (default: read from a '
                          '--weights file, else the recipe\'s)')
  model.add_argument('--image-size', type=int, help='square input size in pixels')
  model.add_argument('--epochs', type=int,
                     help='training epochs of the first phase; a frozen base\'s head stops '
                          'earlier once its eval loss stops improving')
  model.add_argument('--batch-size', type=int, help='images per training step')
  model.add_argument('--learning-rate', type=float,
                     help="adam's learning rate (the Tuner's choice when --tuner-trials > 0)")
  model.add_argument('--class-weights', choices=configs.CLASS_WEIGHTS,
                     help='"balanced": every class weighs the same in the training loss, whatever '
                          f'its image count (default {configs.default("class_weights")})')
  model.add_argument('--tuner-trials', type=int,
                     help='frozen pretrained base: KerasTuner trials (TFX Tuner) choosing the '
                          "head's learning rate and dropout on the base's features; 0 turns "
                          f'tuning off (default {configs.default("tuner_trials")})')
  model.add_argument('--fine-tune-epochs', type=int,
                     help='mobilenet_v2 only: epochs of a second phase that unfreezes the top of '
                          'the base at a low learning rate; 0 (default) turns it off')
  model.add_argument('--no-image-cache', dest='cache_images', action='store_false', default=None,
                     help='decode the images again in every epoch instead of keeping the decoded '
                          'train and eval images in memory (size x size x 3 float16 each)')
  model.add_argument('--per-epoch-augmentation', dest='per_epoch_augmentation',
                     action='store_true', default=None,
                     help='frozen pretrained base: train the head on randomly augmented images in '
                          'every epoch, as the tutorial, instead of on its features computed once')
  gate = parser.add_argument_group('blessing gates (test split; against the last blessed model)')
  gate.add_argument('--gate-metric', choices=list(blessing_gate.GATE_METRICS),
                    help='the test metric the Evaluator gates on (default '
                         f'{configs.default("gate_metric")}: the mean recall of the classes)')
  gate.add_argument('--gate-threshold', type=float,
                    help='bless only at or above this value of --gate-metric (default: halfway '
                         'from chance, 1 / number of classes, to 1)')
  gate.add_argument('--blessing-gate', choices=blessing_gate.GATES,
                    help='"paired": refuse a model only when it is significantly worse than the '
                         'last blessed one on the same test images (exact McNemar test); '
                         '"not-lower": refuse any lower test accuracy (default '
                         f'{configs.default("blessing_gate")})')
  gate.add_argument('--blessing-significance', type=float,
                    help='paired gate: refuse when the one-sided p-value is below this '
                         f'(default {configs.default("blessing_significance")})')
  gate.add_argument('--tflite-max-accuracy-drop', type=float,
                    help="fail the run, pushing nothing, when the blessed model's TFLite copy is "
                         'more than this below its test accuracy, 0 to 1 (default '
                         f'{configs.default("tflite_max_accuracy_drop")})')
  add_drift_arguments(parser)


def _setting_fields() -> tuple:
  """The PipelineConfig fields that add_setting_arguments has a flag for: a flag whose dest is a
  field's name sets that field, with no list to keep in step. --recipe is not one: it picks the
  defaults that the settings overlay (PipelineConfig.for_recipe)."""
  parser = argparse.ArgumentParser(add_help=False)
  add_setting_arguments(parser)
  fields = {field.name for field in dataclasses.fields(configs.PipelineConfig)} - {'recipe'}
  return tuple(action.dest for action in parser._actions if action.dest in fields)  # pylint: disable=protected-access


_SETTING_FIELDS = _setting_fields()


def settings(args: argparse.Namespace) -> Dict[str, object]:
  """PipelineConfig fields of add_setting_arguments' flags; None where a flag was not given."""
  return {**{name: getattr(args, name) for name in _SETTING_FIELDS}, **drift_settings(args)}


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
  run = parser.add_argument_group('execution')
  run.add_argument('--no-cache', action='store_true', help='re-run every component')
  run.add_argument('--verbose', action='store_true', help='show TFX/Beam logs and tracebacks')


def local_parser(description: Optional[str] = None, raise_errors: bool = False) -> FlagParser:
  """The flags of a run on this machine (local_runner.py, airflow_dag.py)."""
  parser = FlagParser(description=description, raise_errors=raise_errors)
  data = parser.add_argument_group('data')
  data.add_argument('--data-root', help='your image folders: DIR/<class>/<images> (split by hash), '
                    'or DIR/train/<class>/* with DIR/validation/<class>/* and/or '
                    'DIR/test/<class>/*; default: the embedded synthetic sample (NOT a real task)')
  data.add_argument('--dataset', choices=DOWNLOADABLE,
                    help="instead of --data-root: the tutorial's data set, downloaded once into a "
                         'cache')
  paths = parser.add_argument_group('outputs')
  paths.add_argument('--pipeline-name', help='name of the pipeline in MLMD and of its run folder '
                     '(default: the data root\'s folder name, e.g. flowers)')
  paths.add_argument('--pipeline-root', help='artifacts and MLMD (metadata.sqlite); default '
                     'runs/<pipeline name>/pipeline_root')
  paths.add_argument('--serving-dir', help='where blessed models are pushed, one numbered version '
                     'per push; default runs/<pipeline name>/serving_model')
  add_setting_arguments(parser)
  beam_presets.add_arguments(parser)
  add_execution_arguments(parser)
  return parser


def run_dir(pipeline_name: str) -> str:
  """Where a local run keeps its pipeline root and serving folder: runs/<pipeline name>/."""
  return os.path.join(configs.REPO_ROOT, 'runs', pipeline_name)
