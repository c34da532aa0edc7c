"""Benchmark: the pipeline with no recipe flags on image folders it was not tuned for, side by side
with the tutorial's recipe in plain Keras on the same splits.

Five cases, one after the other on this machine:

* ``flowers``: ../shared/datasets/flowers (5 classes, class folders only), split into train/
  validation/ test/ by the pipeline's own hash rule (8:1:1), so that both read the same images.
  The pipeline gets ``--data-root`` and ``--weights`` only; plain Keras is benchmarks/
  keras_baseline.py (Dense(5), adam 1e-4, 20 epochs, per-epoch augmentation).
* ``imbalanced``: the same tree with one class cut to 1/8 of its training images, three times
  (seeded samples of the images kept: one cut's ~60 test images of that class make one run's
  balanced accuracy move by a few points): the pipeline as it comes (balanced class weights) and
  with ``--class-weights none`` on each cut, and once on the uncut tree; the gain of the weights
  per cut and on average, against what the imbalance cost (the uncut run's balanced accuracy);
* ``imbalanced_by_class``: the same with each class in turn cut (seed 0), so that the measure is
  not one class's: the cost of an imbalance depends on how alike the small class and the others
  look to the base.
* ``imbalance_study``: the head alone, trained as the pipeline trains it on the uncut run's
  features, over every class cut by several seeds, with balanced sampling, logit adjustment and
  eval-fitted offsets beside class weights, and the uncut head as the ceiling
  (benchmarks/imbalance_study.py): what the pipeline runs above measure on a few cuts, on many.
* ``tutorial``: cats_and_dogs_filtered, its validation/ split by the same rule into validation/
  and test/: the pipeline against plain Keras.

For each: the Evaluator's test accuracy, balanced accuracy and macro-F1 (plain Keras': the same,
from its predictions on test/), total wall time and peak memory (PSS of the process tree).
Writes benchmarks/results/own_images_benchmark.{json,md}; a subset of ``--cases`` replaces
those cases in the results and keeps the others (each case carries its date).

    python -m benchmarks.own_images_benchmark [--cases flowers,imbalanced,imbalanced_by_class,imbalance_study,tutorial]
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Optional

from benchmarks import common

CASES = ('flowers', 'imbalanced', 'imbalanced_by_class', 'imbalance_study', 'tutorial')
FLOWERS = os.path.join(common.DATASETS, 'flowers')
TUTORIAL = os.path.join(common.DATASETS, 'cats_and_dogs_filtered')
# The class cut to 1/8 of its training images in the imbalanced case, once per seed (the study
# cuts every class to the same share).
CUT_CLASS, CUT_TO, CUT_SEEDS = 'daisy', 1 / 8, (0, 1, 2)
# The seeds of the imbalance study's cuts (each cuts every class once).
STUDY_SEEDS = (0, 1, 2)


def split_tree(source: str, target: str) -> Dict[str, Dict[str, int]]:
  """Links ``source``'s images into ``target``/train|validation|test/<class>/ by the pipeline's
  own split rule (splits.assign_split with its default settings): class folders by the 8:1:1
  weights, a validation/ folder into validation/ (eval) and test/ by its test fraction."""
  from components.image_example_gen import layout as layout_lib  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import splits  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  layout = layout_lib.detect_layout(source)
  config = {'split_folders': list(layout.split_folders),
            'test_fraction': configs.default('test_fraction'),
            'split_ratios': configs.default('split_ratios')}
  folder_of = {'train': 'train', 'eval': 'validation', 'test': 'test'}
  counts = {}
  for class_name in layout.class_names:
    for split_folder in layout.split_folders or ('',):
      class_dir = os.path.join(source, split_folder, class_name)
      for name in sorted(os.listdir(class_dir)) if os.path.isdir(class_dir) else []:
        relative = os.path.join(split_folder, class_name, name) if split_folder else os.path.join(
            class_name, name)
        split = folder_of[splits.assign_split(relative, split_folder, config)]
        os.makedirs(os.path.join(target, split, class_name), exist_ok=True)
        os.symlink(os.path.join(class_dir, name), os.path.join(target, split, class_name, name))
        counts.setdefault(split, {}).setdefault(class_name, 0)
        counts[split][class_name] += 1
  return counts


def cut_class(tree: str, class_name: str, share: float, seed: int) -> int:
  """Keeps a seeded random ``share`` of ``class_name``'s training images; returns how many are
  left."""
  folder = os.path.join(tree, 'train', class_name)
  names = sorted(os.listdir(folder))
  kept = max(1, round(len(names) * share))
  for name in random.Random(seed).sample(names, len(names) - kept):
    os.remove(os.path.join(folder, name))
  return kept


def run_pipeline(workdir: str, data_root: str, *flags: str) -> Dict[str, object]:
  """local_runner.py with ``--data-root`` and ``--weights`` (and ``flags``): its measurements and
  what the Evaluator and the Tuner recorded."""
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  from run_results import mlmd_runs, run_summary  # pylint: disable=g-import-not-at-top
  pipeline_root = os.path.join(workdir, 'pipeline_root')
  measured = common.run_measured([
      sys.executable, 'local_runner.py', '--data-root', data_root, '--weights', common.WEIGHTS,
      '--pipeline-root', pipeline_root, '--serving-dir', os.path.join(workdir, 'serving'),
      *flags])
  metadata_path = configs.metadata_path_of(pipeline_root)
  summary = run_summary.summarize(metadata_path)
  run = mlmd_runs.find_run(mlmd_runs.open_store(metadata_path), summary.run_id)
  record = run_summary.training_record(run)
  return {
      'flags': list(flags),
      'wall_seconds': measured['wall_seconds'],
      'peak_memory_bytes': measured['peak_memory_bytes'],
      'test_metrics': summary.test_metrics,
      'per_class': summary.per_class,
      'blessed': summary.blessed,
      'decision': run_summary.decision_lines(summary),
      'hyperparameters': record.get('hyperparameters'),
      'best_epoch': record.get('best_epoch'),
      'class_weights': record.get('class_weights'),
      'component_seconds': {node: seconds for node, (_, seconds) in summary.executions.items()},
  }


def run_features(workdir: str, class_names: List[str]) -> Dict[str, tuple]:
  """{split: (features [N, views, D], labels)} that the BulkInferrer of run_pipeline(workdir, ...)
  wrote."""
  from components.data_quality import component  # pylint: disable=g-import-not-at-top
  from components.modules import frozen_features  # pylint: disable=g-import-not-at-top
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  from run_results import mlmd_runs  # pylint: disable=g-import-not-at-top
  store = mlmd_runs.open_store(configs.metadata_path_of(os.path.join(workdir, 'pipeline_root')))
  _, examples, _ = mlmd_runs.data_quality_inputs(store)
  num_views = len(frozen_features.augmented_views(configs.default('rotation_factor')))
  splits = {}
  for split in ('train', 'eval', 'test'):
    images = component.read_image_set(examples.uri, [split], class_names, num_views)
    splits[split] = (images.embeddings, images.labels)
  return splits


def run_keras(data_root: str) -> Dict[str, object]:
  measured = common.run_measured([sys.executable, '-m', 'benchmarks.keras_baseline',
                                  '--data-root', data_root, '--weights', common.WEIGHTS])
  result = json.loads(measured['stdout'].strip().splitlines()[-1])
  result.update(wall_seconds=measured['wall_seconds'],
                peak_memory_bytes=measured['peak_memory_bytes'])
  return result


def _scores(run: Dict[str, object]) -> Dict[str, float]:
  """{accuracy, balanced_accuracy, macro_f1, images} of a pipeline or plain Keras run."""
  if 'test_metrics' in run:
    metrics = run['test_metrics']
    return {'accuracy': metrics.get('sparse_categorical_accuracy', float('nan')),
            'balanced_accuracy': metrics.get('balanced_accuracy', float('nan')),
            'macro_f1': metrics.get('macro_f1', float('nan')),
            'images': metrics.get('example_count', 0)}
  return {'accuracy': run['test_accuracy'], 'balanced_accuracy': run['balanced_accuracy'],
          'macro_f1': run['macro_f1'], 'images': run['test_examples']}


def _table(columns: List[tuple], baseline: Optional[Dict[str, object]]) -> List[str]:
  row = lambda label, cells: f"| {label} | {' | '.join(cells)} |"
  scores = {name: _scores(run) for name, run in columns}
  lines = [row('', [name for name, _ in columns]), '|---' * (len(columns) + 1) + '|']
  for metric in ('accuracy', 'balanced_accuracy', 'macro_f1'):
    lines.append(row(f'test {metric.replace("_", " ")}',
                     [f'{scores[name][metric]:.4f}' for name, _ in columns]))
  lines += [row('test images', [f"{int(scores[name]['images'])}" for name, _ in columns]),
            row('wall time', [f"{run['wall_seconds']:.0f} s" for _, run in columns]),
            row('peak memory (PSS)',
                [f"{run['peak_memory_bytes'] / 2**30:.2f} GiB" for _, run in columns])]
  if baseline:
    lines.append(row('wall time / plain Keras', [
        f"{run['wall_seconds'] / baseline['wall_seconds']:.2f}x" for _, run in columns]))
  return lines


def _recall(run: Dict[str, object], class_name: str) -> float:
  return run['per_class'].get(class_name, {}).get('recall', float('nan'))


def _imbalanced_markdown(case: Dict[str, object], title: str) -> List[str]:
  """A row per cut (balanced accuracy and the cut class's recall with and without class weights)
  and their mean, against the uncut run."""
  balanced = _scores(case['balanced'])['balanced_accuracy']
  rows, gains = [], []
  for cut in case['cuts']:
    name = cut['class']
    weighted, plain = (_scores(cut[k])['balanced_accuracy'] for k in ('pipeline',
                                                                       'no_class_weights'))
    gains.append(weighted - plain)
    rows.append(f"| {name} | {cut['seed']} | {cut['kept']} of {case['had'][name]} | "
                f"{weighted:.4f} | {plain:.4f} | {100 * (weighted - plain):+.1f} | "
                f"{100 * (balanced - plain):+.1f} | {_recall(case['balanced'], name):.3f} | "
                f"{_recall(cut['pipeline'], name):.3f} | "
                f"{_recall(cut['no_class_weights'], name):.3f} | "
                f"{cut['pipeline']['wall_seconds']:.0f} s / "
                f"{cut['no_class_weights']['wall_seconds']:.0f} s |")
  mean = lambda key: sum(_scores(c[key])['balanced_accuracy'] for c in case['cuts']) / len(
      case['cuts'])
  weighted, plain = mean('pipeline'), mean('no_class_weights')
  return [
      f"## {title} (measured {case['date']})", '',
      f"The uncut tree (the same splits): test balanced accuracy {balanced:.4f}, "
      f"{case['balanced']['wall_seconds']:.0f} s.", '',
      '| class cut | cut seed | kept | balanced accuracy, class weights (default) | '
      '--class-weights none | gain (points) | what the cut cost without weights (points) | '
      "the cut class's recall: uncut | weights | none | wall time, weights / none |",
      '|---|---|---|---|---|---|---|---|---|---|---|', *rows,
      f"| mean | | | {weighted:.4f} | {plain:.4f} | {100 * (weighted - plain):+.1f} | "
      f"{100 * (balanced - plain):+.1f} | | | | |", '',
      f"Class weights recover {100 * (weighted - plain):.1f} of the {100 * (balanced - plain):.1f} "
      f"points the cut costs on average (gains per cut: "
      f"{', '.join(f'{100 * g:+.1f}' for g in gains)}); with weights the mean is "
      f"{100 * (balanced - weighted):.1f} points under the uncut run.", '']


def to_markdown(result: Dict[str, object]) -> str:
  lines = ['# Your own images: the pipeline with no recipe flags against the tutorial in plain '
           'Keras', '', f"Measured on {result['machine']}, each case on the date its heading "
           'gives, one run after the other; the pipeline gets only `--data-root` and `--weights` (MobileNetV2 alpha 1.0, '
           '160 px). Plain Keras: benchmarks/keras_baseline.py, the tutorial as written (adam '
           '1e-4, 20 epochs, per-epoch flips and rotations) with Dense(number of classes). Both '
           'read the same train/ validation/ test/ trees.', '']
  cases = result['cases']
  if 'flowers' in cases:
    case = cases['flowers']
    lines += [f"## flowers (5 classes, {case['counts']}; measured {case['date']})", '',
              *_table([('pipeline', case['pipeline']), ('plain Keras', case['keras'])],
                      case['keras']), '',
              f"Pipeline: {'; '.join(case['pipeline']['decision'])}.", '']
  if 'imbalanced' in cases:
    lines += _imbalanced_markdown(cases['imbalanced'], f'flowers, {CUT_CLASS} cut to 1/8 of its '
                                  f'training images, {len(CUT_SEEDS)} seeded cuts')
  if 'imbalanced_by_class' in cases:
    lines += _imbalanced_markdown(cases['imbalanced_by_class'],
                                  'flowers, each class in turn cut to 1/8 of its training images')
  if 'imbalance_study' in cases:
    from benchmarks import imbalance_study  # pylint: disable=g-import-not-at-top  # TensorFlow
    lines += [f"## flowers, the head alone over many cuts (measured {cases['imbalance_study']['date']})",
              '', *imbalance_study.markdown(cases['imbalance_study'])]
  if 'tutorial' in cases:
    case = cases['tutorial']
    lines += [f"## cats_and_dogs_filtered (the tutorial's data; measured {case['date']})", '',
              *_table([('pipeline', case['pipeline']), ('plain Keras', case['keras'])],
                      case['keras']), '',
              f"Pipeline: {'; '.join(case['pipeline']['decision'])}.", '']
  return '\n'.join(lines) + '\n'


def _imbalanced_cut(workdir: str, class_name: str, seed: int) -> Dict[str, object]:
  """The flowers tree with ``class_name`` cut by ``seed``: the pipeline with and without class
  weights."""
  name = f'{class_name}-{seed}'
  tree = os.path.join(workdir, f'flowers_cut_{name}')
  split_tree(FLOWERS, tree)
  kept = cut_class(tree, class_name, CUT_TO, seed)
  return {'class': class_name, 'seed': seed, 'kept': kept,
          'pipeline': run_pipeline(os.path.join(workdir, f'run-cut-{name}'), tree),
          'no_class_weights': run_pipeline(os.path.join(workdir, f'run-cut-{name}-none'), tree,
                                           '--class-weights', 'none')}


def _merged(name: str, result: Dict[str, object]) -> Dict[str, object]:
  """``result`` with the cases of the last results under ``name`` that it did not run (each keeps
  its own date)."""
  path = os.path.join(common.RESULTS, f'{name}.json')
  if not os.path.exists(path):
    return result
  with open(path) as f:
    previous = json.load(f)
  for case_name, case in previous.get('cases', {}).items():
    if case_name not in result['cases']:
      case.setdefault('date', previous['date'])
      result['cases'][case_name] = case
  result['cases'] = {case: result['cases'][case] for case in CASES if case in result['cases']}
  return result


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--cases', default=','.join(CASES),
                      help='comma-separated, of ' + ', '.join(CASES) + ' (default all)')
  parser.add_argument('--name', default='own_images_benchmark', help='result file name')
  args = parser.parse_args(argv)
  cases = args.cases.split(',')
  unknown = sorted(set(cases) - set(CASES))
  if unknown:
    parser.error(f'unknown case(s) {unknown}')
  for path in (FLOWERS, TUTORIAL, common.WEIGHTS):
    if not os.path.exists(path):
      raise SystemExit(f'needs {path} (../shared)')
  workdir = tempfile.mkdtemp(prefix='own-images-benchmark-')
  result = {'date': time.strftime('%Y-%m-%d'), 'machine': common.machine(), 'cases': {}}
  try:
    flowers = os.path.join(workdir, 'flowers')
    counts = split_tree(FLOWERS, flowers)
    if 'flowers' in cases:
      result['cases']['flowers'] = {
          'counts': {split: sum(c.values()) for split, c in counts.items()},
          'pipeline': run_pipeline(os.path.join(workdir, 'run-flowers'), flowers),
          'keras': run_keras(flowers)}
    uncut = {}  # the uncut run, shared by both imbalanced cases

    def uncut_run():
      if not uncut:
        uncut.update(run_pipeline(os.path.join(workdir, 'run-uncut'), flowers))
      return uncut

    if 'imbalanced' in cases:
      result['cases']['imbalanced'] = {
          'had': counts['train'], 'balanced': uncut_run(),
          'cuts': [_imbalanced_cut(workdir, CUT_CLASS, seed) for seed in CUT_SEEDS]}
    if 'imbalanced_by_class' in cases:
      result['cases']['imbalanced_by_class'] = {
          'had': counts['train'], 'balanced': uncut_run(),
          'cuts': [_imbalanced_cut(workdir, name, 0) for name in sorted(counts['train'])]}
    if 'imbalance_study' in cases:
      from benchmarks import imbalance_study  # pylint: disable=g-import-not-at-top  # TensorFlow
      from components.image_example_gen import layout as layout_lib  # pylint: disable=g-import-not-at-top
      from pipeline import configs  # pylint: disable=g-import-not-at-top
      uncut_run()
      class_names = list(layout_lib.detect_layout(flowers).class_names)
      result['cases']['imbalance_study'] = imbalance_study.study(
          run_features(os.path.join(workdir, 'run-uncut'), class_names), class_names, CUT_TO,
          STUDY_SEEDS, configs.default('tuner_trials'), configs.default('epochs'))
    if 'tutorial' in cases:
      tutorial = os.path.join(workdir, 'cats_and_dogs_filtered')
      split_tree(TUTORIAL, tutorial)
      result['cases']['tutorial'] = {
          'pipeline': run_pipeline(os.path.join(workdir, 'run-tutorial'), tutorial),
          'keras': run_keras(tutorial)}
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  for case in result['cases'].values():
    case['date'] = result['date']
  merged = _merged(args.name, result)
  common.write_results(args.name, merged, to_markdown(merged))


if __name__ == '__main__':
  main()
