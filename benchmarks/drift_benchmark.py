"""Benchmark: does validate.py flag real drift, and only real drift, on the tutorial's images?

The baseline is the 2000 training images of cats_and_dogs_filtered; each case is made from its
1000 validation images in a temporary folder and checked with ``validate.py`` (the pipeline's
comparators and default thresholds):

(a) label skew 90/10; (b) every image 60 % darker; (c) downscaled to 64 px; (d) PNG instead of
JPEG; (e) the validation images as they are, a fresh sample of the same distribution, which must
NOT be flagged. Writes benchmarks/results/drift_benchmark.{json,md}. Skips when ../shared is absent.

    python -m benchmarks.drift_benchmark
"""
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, List

from PIL import Image
from PIL import ImageEnhance

from benchmarks import common
from benchmarks.common import DATA
import bootstrap  # pylint: disable=unused-import

CLASSES = ('cats', 'dogs')


def _convert(source: str, target: str, per_class: int, change: Callable[[Image.Image], Image.Image],
             suffix: str = '.jpg', image_format: str = 'JPEG') -> str:
  """``target/<class>/`` holding the first images of ``source/<class>/``, each passed through
  ``change`` and saved as ``image_format``."""
  for class_name in CLASSES:
    os.makedirs(os.path.join(target, class_name))
    names = sorted(os.listdir(os.path.join(source, class_name)))
    for name in names[:per_class]:
      with Image.open(os.path.join(source, class_name, name)) as image:
        changed = change(image.convert('RGB'))
      changed.save(os.path.join(target, class_name, os.path.splitext(name)[0] + suffix),
                   image_format, **({'quality': 90} if image_format == 'JPEG' else {}))
  return target


def label_skew(source: str, target: str, per_class: int) -> str:
  """90 % cats, 10 % dogs (the originals, linked)."""
  for class_name, count in (('cats', per_class), ('dogs', per_class // 9)):
    os.makedirs(os.path.join(target, class_name))
    for name in sorted(os.listdir(os.path.join(source, class_name)))[:count]:
      os.symlink(os.path.join(source, class_name, name), os.path.join(target, class_name, name))
  return target


def darkened(source: str, target: str, per_class: int) -> str:
  return _convert(source, target, per_class, lambda im: ImageEnhance.Brightness(im).enhance(0.4))


def downscaled(source: str, target: str, per_class: int) -> str:

  def to_64(image: Image.Image) -> Image.Image:
    image.thumbnail((64, 64))
    return image

  return _convert(source, target, per_class, to_64)


def as_png(source: str, target: str, per_class: int) -> str:
  return _convert(source, target, per_class, lambda im: im, '.png', 'PNG')


def fresh_sample(source: str, target: str, per_class: int) -> str:
  """The images as they are (linked)."""
  for class_name in CLASSES:
    os.makedirs(os.path.join(target, class_name))
    for name in sorted(os.listdir(os.path.join(source, class_name)))[:per_class]:
      os.symlink(os.path.join(source, class_name, name), os.path.join(target, class_name, name))
  return target


# case -> (how to make it, the features that must be flagged; empty: nothing may be)
CASES = {
    'a_label_skew_90_10': (label_skew, {'label_name'}),
    'b_darkened_60pct': (darkened, {'mean_brightness'}),
    'c_downscaled_64px': (downscaled, {'height', 'width', 'file_size_bytes'}),
    'd_png_instead_of_jpeg': (as_png, {'format'}),
    'e_fresh_sample_same_distribution': (fresh_sample, set()),
}


def make_baseline(data_root: str, out_dir: str, beam_args: List[str]) -> List[str]:
  """Statistics and schema of ``data_root`` as StatisticsGen and SchemaGen make them; returns the
  validate.py flags that name them."""
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  import validate  # pylint: disable=g-import-not-at-top
  from components.drift import new_data  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  stats_path = os.path.join(out_dir, 'baseline_stats.pb')
  statistics, _, _ = new_data.generate_statistics(
      validate.new_images(data_root, beam_args, image_budget_of(None)), stats_path)
  schema_path = os.path.join(out_dir, 'schema.pbtxt')
  tfdv.write_schema_text(tfdv.infer_schema(statistics, infer_feature_shape=True), schema_path)
  return ['--baseline-stats', stats_path, '--schema', schema_path]


def run_case(data_root: str, baseline_flags: List[str], output_dir: str,
             beam_args: List[str]) -> dict:
  """validate.py's verdict on ``data_root``: exit status, flagged features, every score."""
  import validate  # pylint: disable=g-import-not-at-top
  from components.drift import drift_comparison  # pylint: disable=g-import-not-at-top
  args = validate.build_parser().parse_args(
      ['--data-root', data_root, '--output-dir', output_dir, *baseline_flags,
       *[f'--beam-arg={arg}' for arg in beam_args]])
  start = time.time()
  status, report = validate.validate(args)
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  anomalies = tfdv.load_anomalies_text(os.path.join(output_dir, 'anomalies.pbtxt'))
  rows = drift_comparison.findings(anomalies, drift_comparison.COMPARED_FEATURES)
  return {
      'exit_status': status,
      'seconds': round(time.time() - start, 1),
      'flagged': sorted({row.feature for row in rows if row.flagged}),
      'scores': {f'{row.feature} {row.check}': round(row.score, 4) for row in rows
                 if row.score is not None},
      'anomalies': sorted(f'{row.feature}: {row.check}' for row in rows
                          if row.flagged and row.score is None),
      'report': report,
  }


def write_results(results: dict) -> None:
  features = sorted({key for case in results['cases'].values() for key in case['scores']})
  lines = [
      '# Drift benchmark', '',
      f"Baseline: {results['baseline']}; each case from the validation images "
      f"({results['per_class']} per class). Thresholds: {results['thresholds']}. "
      'Scores above the threshold are flagged (**bold**).', '',
      '| case | verdict | flagged | anomalies | seconds |', '|---|---|---|---|---|']
  for name, case in results['cases'].items():
    verdict = 'as expected' if case['as_expected'] else '**NOT as expected**'
    lines.append(f"| {name} | {verdict} (exit {case['exit_status']}) | "
                 f"{', '.join(case['flagged']) or '-'} | {'; '.join(case['anomalies']) or '-'} | "
                 f"{case['seconds']} |")
  lines += ['', '| score | ' + ' | '.join(results['cases']) + ' |',
            '|---|' + '---|' * len(results['cases'])]
  for key in features:
    cells = []
    for case in results['cases'].values():
      value = case['scores'].get(key)
      flagged = key.split(' ')[0] in case['flagged']
      cells.append('-' if value is None else (f'**{value:.4f}**' if flagged else f'{value:.4f}'))
    lines.append(f'| {key} | ' + ' | '.join(cells) + ' |')
  common.write_results('drift_benchmark', results, '\n'.join(lines) + '\n')


def main() -> int:
  if not os.path.isdir(DATA):
    print(f'skipped: {DATA} is absent')
    return 0
  from components.drift.drift_thresholds import DriftThresholds  # pylint: disable=g-import-not-at-top
  per_class = 500  # all of the validation images
  beam_args = ['--direct_running_mode=multi_processing', '--direct_num_workers=2']
  work = tempfile.mkdtemp(prefix='drift_benchmark_')
  try:
    baseline_flags = make_baseline(os.path.join(DATA, 'train'), work, beam_args)
    results = {'baseline': f'{DATA}/train (2000 images)', 'per_class': per_class,
               'thresholds': vars(DriftThresholds()), 'cases': {}}
    for name, (make, expected) in CASES.items():
      data_root = make(os.path.join(DATA, 'validation'), os.path.join(work, name), per_class)
      case = run_case(data_root, baseline_flags, os.path.join(work, f'{name}_report'), beam_args)
      case['expected_flagged'] = sorted(expected)
      case['as_expected'] = (set(case['flagged']) >= expected if expected
                             else not case['flagged'] and case['exit_status'] == 0)
      results['cases'][name] = case
      print(f"{name}: exit {case['exit_status']}, flagged {case['flagged']}", flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  write_results(results)
  return 0 if all(case['as_expected'] for case in results['cases'].values()) else 1


if __name__ == '__main__':
  sys.exit(main())
