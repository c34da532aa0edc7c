"""Benchmark: the whole pipeline on the real cats_and_dogs_filtered vs the same recipe in plain Keras.

Runs, one after the other on this machine, (1) ``local_runner.py`` on ../shared/datasets with the
pretrained backbone from ../shared/weights and the tutorial's 20 epochs, (2) ``keras_baseline.py``
and, with ``--fine-tune-epochs N``, (3) the pipeline again with N epochs of fine-tuning the top of
the backbone. Writes benchmarks/results/pipeline_benchmark.{json,md} with the Evaluator's test
accuracy, the pushed model's accuracy through ``serving_image_bytes`` on every image of
``validation/`` (measured after the run, not timed), per-component wall time, total wall time of
each, peak memory (PSS summed over the process tree, sampled every 0.5 s) and the pipeline root's
size on disk next to the raw images.

    python -m benchmarks.pipeline_benchmark [--epochs 20] [--fine-tune-epochs 10] [--skip-keras]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List


from benchmarks import common  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import configs  # pylint: disable=g-import-not-at-top,wrong-import-position

DATA = common.DATA
WEIGHTS = common.WEIGHTS


def run_pipeline(workdir: str, epochs: int, fine_tune_epochs: int) -> Dict[str, object]:
  from run_results import run_summary  # pylint: disable=g-import-not-at-top
  pipeline_root = os.path.join(workdir, 'pipeline_root')
  measured = common.run_measured([
      sys.executable, 'local_runner.py', '--data-root', DATA,
      '--weights', WEIGHTS, '--epochs', str(epochs),
      '--fine-tune-epochs', str(fine_tune_epochs),
      '--pipeline-root', pipeline_root, '--serving-dir', os.path.join(workdir, 'serving')])
  summary = run_summary.summarize(configs.metadata_path_of(pipeline_root))
  return {
      'wall_seconds': measured['wall_seconds'],
      'peak_memory_bytes': measured['peak_memory_bytes'],
      'test_metrics': summary.test_metrics,
      'blessed': summary.blessed,
      'served_validation_accuracy': (served_accuracy(summary.pushed_to, os.path.join(DATA, 'validation'))
                                     if summary.pushed_to else None),
      'component_seconds': {node: seconds for node, (_, seconds) in summary.executions.items()},
      'pipeline_root_bytes': common.du(pipeline_root),
  }


def served_accuracy(model_dir: str, folder: str) -> Dict[str, object]:
  """Accuracy of the pushed model, through predict.py's client of ``serving_image_bytes``, on
  every image of ``folder``/<class>/."""
  import predict  # pylint: disable=g-import-not-at-top
  classifier = predict.SavedModelClassifier(model_dir)
  correct = total = 0
  for class_name in sorted(os.listdir(folder)):
    paths = predict.list_images([os.path.join(folder, class_name)])
    for result in predict.predict(classifier, paths, batch_size=64, progress=False):
      total += 1
      correct += result.get('class') == class_name
  return {'accuracy': correct / total, 'images': total}


def run_keras(epochs: int) -> Dict[str, object]:
  measured = common.run_measured([sys.executable, '-m', 'benchmarks.keras_baseline',
                           '--data-root', DATA, '--weights', WEIGHTS, '--epochs', str(epochs)])
  result = json.loads(measured['stdout'].strip().splitlines()[-1])
  result.update(wall_seconds=measured['wall_seconds'], peak_memory_bytes=measured['peak_memory_bytes'])
  return result


def _accuracy_cells(run: Dict[str, object]) -> List[str]:
  test = run['test_metrics']
  served = run.get('served_validation_accuracy')
  return [f"{test.get('sparse_categorical_accuracy', float('nan')):.4f} "
          f"({int(test.get('example_count', 0))} images)",
          f"{served['accuracy']:.4f} ({served['images']} images)" if served else '-']


def to_markdown(result: Dict[str, object]) -> str:
  pipeline, keras, fine_tune = result['pipeline'], result.get('keras'), result.get('fine_tune')
  gib = 1 << 30
  columns = [('pipeline', pipeline)] + ([('plain Keras', keras)] if keras else []) + (
      [(f"pipeline + {result['fine_tune_epochs']} fine-tune epochs", fine_tune)] if fine_tune else [])
  keras_cells = lambda: [f"{keras['test_accuracy']:.4f} ({keras['test_examples']} images)", '-']
  accuracy = {name: (keras_cells() if run is keras else _accuracy_cells(run)) for name, run in columns}
  row = lambda label, cells: f"| {label} | {' | '.join(cells)} |"
  lines = [
      f"# Pipeline benchmark (cats_and_dogs_filtered, MobileNetV2 alpha 1.0, {result['epochs']} epochs)",
      '', f"Measured {result['date']} on {result['machine']}, one run after the other.", '',
      row('', [name for name, _ in columns]), '|---' * (len(columns) + 1) + '|',
      row('test accuracy', [accuracy[name][0] for name, _ in columns]),
      row('served model on all of validation/', [accuracy[name][1] for name, _ in columns]),
      row('total wall time', [f"{run['wall_seconds']:.0f} s" for _, run in columns]),
      row('peak memory (PSS, process tree)',
          [f"{run['peak_memory_bytes'] / gib:.2f} GiB" for _, run in columns]),
  ]
  if keras:
    lines += [
        row('wall time / plain Keras', [f"{run['wall_seconds'] / keras['wall_seconds']:.2f}x"
                                        for _, run in columns]),
        row('peak memory / plain Keras', [f"{run['peak_memory_bytes'] / keras['peak_memory_bytes']:.2f}x"
                                          for _, run in columns])]
  lines += [
      '', f"Blessed: {pipeline['blessed']}. Pipeline root: {pipeline['pipeline_root_bytes'] / 2**20:.0f} MiB"
      f" for {result['raw_data_bytes'] / 2**20:.0f} MiB of raw images "
      f"({pipeline['pipeline_root_bytes'] / result['raw_data_bytes']:.2f}x).", '',
      '| component | wall seconds |', '|---|---|',
  ] + [f'| {node} | {seconds:.1f} |' for node, seconds in sorted(
      pipeline['component_seconds'].items(), key=lambda item: -item[1])]
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--epochs', type=int, default=configs.default('epochs'),
                      help='most epochs of the pipeline\'s head (default %(default)s, the '
                           'recipe\'s; plain Keras trains the tutorial\'s 20)')
  parser.add_argument('--fine-tune-epochs', type=int, default=0,
                      help='also run the pipeline with this many fine-tuning epochs (default '
                           '%(default)s: not run)')
  parser.add_argument('--skip-keras', action='store_true', help='only run the pipeline')
  parser.add_argument('--name', default='pipeline_benchmark', help='result file name')
  args = parser.parse_args()
  if not (os.path.isdir(DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: needs {DATA} and {WEIGHTS}')
    return
  workdir = tempfile.mkdtemp(prefix='cats-dogs-benchmark-')
  try:
    result = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': common.machine(),
        'epochs': args.epochs,
        'fine_tune_epochs': args.fine_tune_epochs,
        'raw_data_bytes': common.du(DATA),
        'pipeline': run_pipeline(os.path.join(workdir, 'frozen'), args.epochs, 0),
    }
    if not args.skip_keras:
      result['keras'] = run_keras()
    if args.fine_tune_epochs:
      result['fine_tune'] = run_pipeline(os.path.join(workdir, 'fine_tune'), args.epochs,
                                         args.fine_tune_epochs)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  common.write_results(args.name, result, to_markdown(result))


if __name__ == '__main__':
  main()
