"""Benchmark: the tutorial's four models, each through the whole pipeline on the real data.

Runs ``local_runner.py --model NAME`` once per variant (``components/modules/model_variants.py``) on
../shared/datasets/cats_and_dogs_filtered, each on a fresh pipeline root: the three small CNNs for
the tutorial's 15 epochs at adam's default learning rate 1e-3, MobileNetV2 with the pretrained
backbone from ../shared/weights for the transfer recipe's 20 epochs at 1e-4. Writes
benchmarks/results/tutorial_models.{json,md}: test accuracy (the Evaluator's, read from MLMD),
the best eval accuracy of the Trainer's epochs (its history.json), wall time, and whether the
Evaluator blessed the model, next to the tutorial's published figures.

The Evaluator's gate for the real data (test accuracy >= 0.9) is not meant for the CNNs: that they
are not blessed (and nothing is pushed) is the expected outcome, reported in the table.

    python -m benchmarks.tutorial_models [--epochs 15] [--transfer-epochs 20] [--models a,b]
"""
import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

import psutil

from benchmarks import common
from benchmarks.common import DATA, RESULTS, WEIGHTS, du, run_measured
from components.modules import model_variants
from pipeline import configs

DATASET = 'cats_and_dogs_filtered'
# The tutorial's figures as quoted in the project's issue 5: validation accuracy of each model,
# and the test accuracy of the transfer model.
PUBLISHED = {
    model_variants.SMALL_CNN: '~57 % validation',
    model_variants.CNN_AUGMENTED: '~55 % validation',
    model_variants.CNN_AUGMENTED_SCALED: '~70 % validation',
    model_variants.MOBILENET_V2: '~96 % validation, 97.9 % test',
}


def learning_rate(variant: model_variants.ModelVariant) -> float:
  """The variant's default, as PipelineConfig resolves it when --learning-rate is not given."""
  return configs.recipe_settings(configs.TRANSFER, model=variant.name).get(
      'learning_rate', configs.default('learning_rate'))


def best_eval_accuracy(pipeline_root: str) -> Optional[Dict[str, float]]:
  """Best val_accuracy of the Trainer's epochs and its epoch (1-based), from history.json."""
  files = glob.glob(os.path.join(pipeline_root, 'Trainer', 'model_run', '*', 'history.json'))
  if not files:
    return None
  with open(max(files, key=os.path.getmtime)) as f:
    history = json.load(f)['history']
  values = history.get('val_accuracy') or []
  if not values:
    return None
  best = max(range(len(values)), key=values.__getitem__)
  return {'best_eval_accuracy': values[best], 'best_epoch': best + 1,
          'last_eval_accuracy': values[-1], 'last_train_accuracy': history['accuracy'][-1]}


def run_variant(name: str, epochs: int, workdir: str) -> Dict[str, object]:
  from run_results import run_summary  # pylint: disable=g-import-not-at-top
  variant = model_variants.get(name)
  pipeline_root = os.path.join(workdir, name, 'pipeline_root')
  rate = learning_rate(variant)
  command = [sys.executable, 'local_runner.py', '--data-root', DATA,
             '--model', name, '--epochs', str(epochs), '--learning-rate', repr(rate),
             '--pipeline-root', pipeline_root,
             '--serving-dir', os.path.join(workdir, name, 'serving')]
  if variant.transfer:
    command += ['--weights', WEIGHTS, '--alpha', '1.0']
  result = {'model': name, 'tutorial_number': variant.tutorial_number, 'epochs': epochs,
            'learning_rate': rate, 'augmented': variant.augment,
            'published': PUBLISHED[name]}
  print(f'\n=== model {variant.tutorial_number}: {name}, {epochs} epochs, lr {rate:g}', flush=True)
  try:
    measured = run_measured(command)
  except SystemExit as e:  # run_measured's way of saying the run failed
    result['error'] = str(e)
    return result
  summary = run_summary.summarize(configs.metadata_path_of(pipeline_root))
  trainer = summary.executions.get('Trainer')
  result.update(
      test_accuracy=summary.test_metrics.get('sparse_categorical_accuracy'),
      test_examples=int(summary.test_metrics.get('example_count', 0)),
      blessed=summary.blessed,
      pushed=summary.pushed_to is not None,
      wall_seconds=measured['wall_seconds'],
      trainer_seconds=trainer[1] if trainer else None,
      peak_memory_bytes=measured['peak_memory_bytes'],
      pipeline_root_bytes=du(pipeline_root),
      **(best_eval_accuracy(pipeline_root) or {}))
  return result


def _pct(value: Optional[float]) -> str:
  return '-' if value is None else f'{100 * value:.1f} %'


def to_markdown(result: Dict[str, object]) -> str:
  lines = [
      f"# The tutorial's four models through the pipeline ({DATASET})", '',
      f"Measured {result['date']} on {result['machine']}, each model on a fresh pipeline root "
      '(`python -m benchmarks.tutorial_models`). Test accuracy: the Evaluator on the test split '
      'of the pipeline (a hashed fifth of validation/); eval accuracy: the Trainer\'s per-epoch '
      'validation on the rest of validation/, best epoch. The Evaluator blesses only at or above '
      'test accuracy 0.9, so the CNNs are not blessed and not pushed, as expected.', '',
      '| # | `--model` | epochs | learning rate | test accuracy | best eval accuracy (epoch) '
      '| last train accuracy | Trainer | total wall time | blessed | tutorial (published) |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for r in result['runs']:
    if 'error' in r:
      lines.append(f"| {r['tutorial_number']} | `{r['model']}` | {r['epochs']} | "
                   f"{r['learning_rate']:g} | failed: {r['error']} | | | | | | {r['published']} |")
      continue
    best = (f"{_pct(r.get('best_eval_accuracy'))} ({r['best_epoch']})"
            if 'best_epoch' in r else '-')
    trainer = f"{r['trainer_seconds']:.0f} s" if r.get('trainer_seconds') is not None else '-'
    lines.append(
        f"| {r['tutorial_number']} | `{r['model']}` | {r['epochs']} | {r['learning_rate']:g} | "
        f"{_pct(r['test_accuracy'])} ({r['test_examples']} images) | {best} | "
        f"{_pct(r.get('last_train_accuracy'))} | {trainer} | {r['wall_seconds']:.0f} s | "
        f"{'yes' if r['blessed'] else 'no'} | {r['published']} |")
  lines += [
      '', 'All models see the same 160 px images of the Transform graph, in batches of 32; models '
      '2-4 train on random horizontal flips and rotations of up to ±36°, and their Dropout rate is '
      '0.2. Total wall time is the whole pipeline, ExampleGen to Pusher; Trainer is its share.']
  return '\n'.join(lines) + '\n'


def write(result: Dict[str, object], name: str) -> str:
  return common.write_results(name, result, to_markdown(result))


def _models(text: str) -> List[str]:
  names = [name.strip() for name in text.split(',') if name.strip()]
  for name in names:
    try:
      model_variants.get(name)
    except ValueError as e:
      raise argparse.ArgumentTypeError(str(e)) from None
  return names


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--markdown-only', action='store_true',
                      help='only rewrite the .md file from the .json file of an earlier run')
  parser.add_argument('--epochs', type=int, default=15,
                      help="epochs of the CNNs (default %(default)s, the tutorial's)")
  parser.add_argument('--transfer-epochs', type=int, default=configs.default('epochs'),
                      help='most epochs of mobilenet_v2\'s head (default %(default)s, the '
                           'pipeline\'s recipe, which stops earlier)')
  parser.add_argument('--models', type=_models, default=list(model_variants.VARIANTS),
                      metavar='NAME,NAME', help='which variants (default: all four)')
  parser.add_argument('--name', default='tutorial_models', help='result file name')
  args = parser.parse_args(argv)
  if min(args.epochs, args.transfer_epochs) < 1:
    parser.error('--epochs and --transfer-epochs must be positive integers')
  if args.markdown_only:
    with open(os.path.join(RESULTS, f'{args.name}.json')) as f:
      write(json.load(f), args.name)
    return
  if not (os.path.isdir(DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: needs {DATA} and {WEIGHTS}')
    return
  result = {
      'date': time.strftime('%Y-%m-%d'),
      'machine': f'{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB',
      'raw_data_bytes': du(DATA),
      'runs': [],
  }
  for name in args.models:
    epochs = args.transfer_epochs if model_variants.get(name).transfer else args.epochs
    workdir = tempfile.mkdtemp(prefix='cats-dogs-tutorial-models-')
    try:
      result['runs'].append(run_variant(name, epochs, workdir))
    finally:
      shutil.rmtree(workdir, ignore_errors=True)
    write(result, args.name)  # after every model, so a partial run leaves its results


if __name__ == '__main__':
  main()
