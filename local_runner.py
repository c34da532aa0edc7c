"""Runs the cats-vs-dogs TFX pipeline on this machine: LocalDagRunner, Beam, MLMD in SQLite.

    python local_runner.py                                   # embedded synthetic sample, minutes
    python local_runner.py --dataset cats_and_dogs_filtered  # the tutorial's data (download)
    python local_runner.py --data-root DIR --weights my_no_top.h5
"""
import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import argparse  # pylint: disable=g-import-not-at-top,wrong-import-position
import logging
import re
import sys
import warnings
from typing import Dict, List, Optional

from components.modules import model_variants
from pipeline import beam_presets
from pipeline import drift
from pipeline import configs

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
SAMPLE_ROOT = os.path.join(REPO_ROOT, 'data', 'sample')

# Per data set defaults; any flag given on the command line wins.
DATASET_DEFAULTS = {
    # Synthetic and easy: a small MobileNetV2 trained from scratch learns it offline in minutes.
    'sample': dict(weights='none', alpha=0.35, image_size=96, epochs=20, batch_size=16,
                   learning_rate=1e-3, accuracy_threshold=0.8),
    # The tutorial's recipe.
    'cats_and_dogs_filtered': dict(weights='imagenet', alpha=1.0, image_size=160, epochs=20,
                                   batch_size=32, learning_rate=1e-4, accuracy_threshold=0.9),
}


def _fraction(text: str) -> float:
  value = float(text)
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(f'{text} is not a fraction in [0, 1]')
  return value


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
  return value


def _positive_float(text: str) -> float:
  value = float(text)
  if value <= 0:
    raise argparse.ArgumentTypeError(f'{text} is not a positive number')
  return value


def _split_ratios(text: str) -> Dict[str, int]:
  try:
    ratios = [int(part) for part in text.split(',')]
  except ValueError:
    ratios = []
  if len(ratios) != 3 or min(ratios) < 1:
    raise argparse.ArgumentTypeError(f'{text!r} is not three positive integers TRAIN,EVAL,TEST')
  return dict(zip(('train', 'eval', 'test'), ratios))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
  """Data-check and model flags; the other runners (kubeflow_runner, airflow_dag) share them."""
  checks = parser.add_argument_group('data checks')
  checks.add_argument('--test-fraction', type=_fraction, default=0.2,
                      help='share of validation/ held out as the test split (default %(default)s)')
  checks.add_argument('--max-class-ratio', type=_positive_float, default=1.5,
                      help='fail when a split\'s max/min class count exceeds this (default %(default)s)')
  checks.add_argument('--max-skipped-fraction', type=_fraction, default=0.01,
                      help='fail when more than this share of files are not images (default %(default)s)')
  checks.add_argument('--split-ratios', type=_split_ratios, metavar='TRAIN,EVAL,TEST',
                      help='weights of the hash split of a root with class folders only '
                           '(default 8,1,1)')
  model = parser.add_argument_group('model and training (defaults depend on --dataset)')
  model.add_argument(
      '--model', choices=list(model_variants.VARIANTS), default=model_variants.DEFAULT,
      help="one of the tutorial's models: " + '; '.join(
          f'{v.name} = model {v.tutorial_number}, {v.description}'
          for v in model_variants.VARIANTS.values())
      + f'. The CNNs train at learning rate {model_variants.CNN_LEARNING_RATE:g} (adam\'s '
      'default, as the tutorial) unless --learning-rate is given')
  model.add_argument('--weights', help='mobilenet_v2 only: "imagenet" (Keras download), "none", '
                     'or a no_top .h5 file')
  model.add_argument('--alpha', type=_positive_float,
                     help='mobilenet_v2 only: MobileNetV2 width multiplier')
  model.add_argument('--image-size', type=_positive_int, help='square input size in pixels')
  model.add_argument('--epochs', type=_positive_int)
  model.add_argument('--batch-size', type=_positive_int)
  model.add_argument('--learning-rate', type=_positive_float)
  model.add_argument('--fine-tune-epochs', type=int, default=0,
                     help='mobilenet_v2 only: epochs of a second phase that unfreezes the top of '
                          'the base at a low learning rate; 0 (default) turns it off')
  model.add_argument('--no-image-cache', action='store_true',
                     help='decode the images again in every epoch instead of keeping the decoded '
                          'train and eval images in memory (size x size x 3 float32 each)')
  model.add_argument('--per-epoch-augmentation', action='store_true',
                     help='frozen pretrained base: train the head on randomly augmented images in '
                          'every epoch, as the tutorial, instead of on its features computed once')
  model.add_argument('--accuracy-threshold', type=_fraction,
                     help='the Evaluator blesses a model only at or above this test accuracy')
  drift.add_arguments(parser)


def model_settings(args: argparse.Namespace) -> Dict[str, object]:
  """PipelineConfig fields of add_model_arguments' flags; unset ones take --dataset's defaults."""
  chosen = {key: getattr(args, key) if getattr(args, key) is not None else value
            for key, value in DATASET_DEFAULTS[args.dataset].items()}
  variant = model_variants.get(args.model)
  if args.learning_rate is None and variant.learning_rate is not None:
    chosen['learning_rate'] = variant.learning_rate
  if args.fine_tune_epochs > 0 and not variant.transfer:
    raise UsageError(f'--fine-tune-epochs {args.fine_tune_epochs} unfreezes a pretrained base; '
                     f'--model {args.model} has none (fine-tuning applies to --model '
                     f'{model_variants.MOBILENET_V2} only)')
  return dict(model=args.model,
              test_fraction=args.test_fraction, max_class_ratio=args.max_class_ratio,
              max_skipped_fraction=args.max_skipped_fraction, split_ratios=args.split_ratios,
              fine_tune_epochs=args.fine_tune_epochs, cache_images=not args.no_image_cache,
              per_epoch_augmentation=args.per_epoch_augmentation,
              **drift.settings(args), **chosen)


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  data = parser.add_argument_group('data')
  data.add_argument('--dataset', choices=sorted(DATASET_DEFAULTS), default='sample',
                    help='embedded synthetic "sample" (default; NOT the real task) or the '
                         "tutorial's cats_and_dogs_filtered (downloaded once into a cache); also "
                         'picks the defaults of the model flags below')
  data.add_argument('--data-root', help='image folder tree to use instead: DIR/train/<class>/* '
                    'and DIR/validation/<class>/*, or DIR/<class>/*')
  paths = parser.add_argument_group('outputs')
  paths.add_argument('--pipeline-root', help='artifacts and MLMD (metadata.sqlite); default '
                     'runs/<dataset>/pipeline_root')
  paths.add_argument('--serving-dir', help='where blessed models are pushed, one numbered version '
                     'per push; default runs/<dataset>/serving_model')
  add_model_arguments(parser)
  beam_presets.add_arguments(parser)
  run = parser.add_argument_group('execution')
  run.add_argument('--no-cache', action='store_true', help='re-run every component')
  run.add_argument('--verbose', action='store_true', help='show TFX/Beam logs and tracebacks')
  return parser


def resolve_data_root(args: argparse.Namespace) -> str:
  if args.data_root:
    return os.path.abspath(args.data_root)
  if args.dataset == 'sample':
    return SAMPLE_ROOT
  from data import download  # pylint: disable=g-import-not-at-top
  return download.fetch()


class UsageError(ValueError):
  """Flags that cannot work together; the message says which and why."""


def _inside(path: str, folder: str) -> bool:
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return os.path.commonpath([path, folder]) == folder


def check_paths(config: configs.PipelineConfig) -> None:
  """Rejects outputs that would land among the input images, and a weights file that is missing,
  before minutes of work are spent."""
  for flag, path in (('--pipeline-root', config.pipeline_root), ('--serving-dir', config.serving_dir)):
    if _inside(path, config.data_root):
      raise UsageError(f'{flag} {path} is inside the data root {config.data_root}; the next run '
                       'would read its files as images. Put it elsewhere.')
    if os.path.exists(path) and not os.path.isdir(path):
      raise UsageError(f'{flag} {path} exists and is not a folder')
  if config.serving_dir == config.pipeline_root:
    raise UsageError('--serving-dir must differ from --pipeline-root: a model server would try to '
                     'load the artifact folders as model versions')
  weights = config.weights
  if weights != 'imagenet' and weights.lower() != 'none' and '://' not in weights and (
      not os.path.isfile(weights)):
    raise UsageError(f'--weights {weights}: no such file; pass "imagenet" (download), '
                     '"none", or a MobileNetV2 no_top .h5 file')


def config_from_args(args: argparse.Namespace) -> configs.PipelineConfig:
  run_dir = os.path.join(REPO_ROOT, 'runs', args.dataset if not args.data_root else 'custom')
  config = configs.PipelineConfig(
      data_root=resolve_data_root(args),
      pipeline_root=os.path.abspath(args.pipeline_root or os.path.join(run_dir, 'pipeline_root')),
      serving_dir=os.path.abspath(args.serving_dir or os.path.join(run_dir, 'serving_model')),
      beam_pipeline_args=beam_presets.from_args(args),
      enable_cache=not args.no_cache,
      **model_settings(args))
  check_paths(config)
  return config


def run(config: configs.PipelineConfig) -> None:
  from tfx import v1 as tfx  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  pipeline = create_pipeline(config)
  # TFX's Beam executors parse sys.argv as absl flags (a caller's '-v X' breaks them); everything
  # the pipeline needs is in config, so they get the program name only.
  argv, sys.argv = sys.argv, sys.argv[:1]
  try:
    tfx.orchestration.LocalDagRunner().run(pipeline)
  finally:
    sys.argv = argv


def report(config: configs.PipelineConfig) -> str:
  """The Evaluator's verdict and where the model went, read back from MLMD."""
  from pipeline import run_summary  # pylint: disable=g-import-not-at-top
  summary = run_summary.summarize(config.metadata_path)
  metrics = ', '.join(f'{name} {value:.4f}' for name, value in sorted(summary.test_metrics.items()))
  counts = summary.file_counts
  lines = []
  if counts:
    lines.append(f"images: {counts['images_used']} of {counts['files_seen']} files used, "
                 f"{counts['files_skipped']} skipped (listed with reasons in "
                 f'{summary.image_summary_path})')
  lines.append(f'test split: {metrics or "no evaluation"}')
  if summary.blessed:
    lines.append(f'model blessed (accuracy >= {config.accuracy_threshold} and not worse than the '
                 f'last blessed model); pushed to {summary.pushed_to}')
  else:
    lines.append(f'model NOT blessed (accuracy < {config.accuracy_threshold} or worse than the '
                 f'last blessed model); nothing was pushed to {config.serving_dir}')
  return '\n'.join(lines)


class _ProgressFilter(logging.Filter):
  """Without --verbose, shows which component runs, whether it came from the cache, and the
  ExampleGen's progress lines, which Beam's worker processes send as 'Worker: <LogEntry proto>'."""
  _SHOWN = ('Component ', 'A cached execution', 'Image ExampleGen: ')
  _WORKER_MESSAGE = re.compile(r'^Worker: .*?message: "(.*?)(?<!\\)"')

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR:
      return True
    message = record.getMessage()
    from_worker = self._WORKER_MESSAGE.match(message)
    if from_worker:
      message = record.msg = from_worker.group(1)
      record.args = ()
    return record.levelno in (logging.INFO, logging.WARNING) and message.startswith(self._SHOWN)


def configure_logging(verbose: bool) -> None:
  if verbose:
    logging.basicConfig(level=logging.INFO)
    return
  # Also reaches the Beam worker processes, which inherit the environment.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  os.environ.setdefault('PYTHONWARNINGS', 'ignore')
  os.environ.setdefault('PIP_QUIET', '1')  # TFX pip-installs the module-file wheel per component
  os.environ.setdefault('DIST_EXTRA_CONFIG',  # ... after building it with setuptools
                        os.path.join(REPO_ROOT, 'pipeline', 'quiet_setuptools.cfg'))
  warnings.filterwarnings('ignore')
  handler = logging.StreamHandler(sys.stdout)
  handler.addFilter(_ProgressFilter())
  handler.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%H:%M:%S'))
  logging.basicConfig(level=logging.INFO, handlers=[handler])
  # Libraries that parse absl flags later would drop absl's logger to WARNING, hiding the progress.
  from absl import flags, logging as absl_logging  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()
  absl_logging.set_verbosity(absl_logging.INFO)


def write_run_report(config: configs.PipelineConfig) -> Optional[str]:
  """The run's HTML report (pipeline/run_report.py); None, with a note, when it cannot be written."""
  from pipeline import run_report  # pylint: disable=g-import-not-at-top
  if not os.path.exists(config.metadata_path):  # stopped before anything ran
    return None
  try:
    return run_report.write_report(config.metadata_path,
                                   os.path.join(config.pipeline_root, 'reports'))
  except Exception as e:  # pylint: disable=broad-except
    print(f'(no run report: {type(e).__name__}: {e})', file=sys.stderr)
    return None


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  configure_logging(args.verbose)
  try:
    config = config_from_args(args)
    print(f'pipeline root: {config.pipeline_root}\ndata root:     {config.data_root}', flush=True)
  except Exception as e:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
    return 1
  try:
    run(config)
  except Exception as e:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
    print('(run again with --verbose for the full log and traceback)', file=sys.stderr)
    report_path = write_run_report(config)
    if report_path:
      print(f'report of what ran: {report_path}', file=sys.stderr)
    return 1
  print(report(config))
  report_path = write_run_report(config)
  if report_path:
    print(f'report: {report_path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
