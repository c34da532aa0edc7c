"""Benchmark: predict.py from a cold start, its TFLite engine against its SavedModel engine.

On a model the pipeline trained and pushed on the real data (cats_and_dogs_filtered, MobileNetV2
alpha 1.0 at 160 px), every measurement a fresh process run as a user runs it (``python
predict.py PATH --pipeline-root ROOT --engine ENGINE --format json``: the latest push looked up
in MLMD, then the model loaded and the files classified):

* one photo, ``--runs`` times per engine, the engines taking turns: wall time from start to
  exit, and the process's peak RSS (common.run_measured);
* the validation folder (all 1 000 photos), once per engine: the same, and every answer;
* agreement of the two engines on those 1 000 photos: classes and out-of-distribution flags,
  with the largest differences of probability and score and every disagreement;
* decoders: the TFLite engine decodes with Pillow, the SavedModel's Transform graph with
  TensorFlow (JPEGs with the accurate integer DCT; TensorFlow's default, the fast one, decoded
  for the models pushed before); per photo, whether the upright pixels differ from Pillow's, and
  whether those pixels fed to the same TFLite model change a class or a flag.

Writes benchmarks/results/predict_cold_start.{json,md}. Photos are read from the page cache after
the first run: "cold" means a new process, not a cold disk.

    python -m benchmarks.predict_cold_start --pipeline-root ROOT_OF_A_REAL_DATA_RUN
    python -m benchmarks.predict_cold_start     # runs local_runner.py on the real data first
"""
import os
# pylint: disable=wrong-import-position
import argparse
import datetime
import glob
import json
import statistics
import sys
import tempfile
from typing import Dict, List

import numpy as np

from benchmarks import common
from run_results.served_models import resolve_model

DATA = os.path.join(common.DATASETS, 'cats_and_dogs_filtered')
VALIDATION = os.path.join(DATA, 'validation')
ONE_PHOTO = os.path.join(VALIDATION, 'cats', 'cat.2000.jpg')
ENGINES = ('tflite', 'savedmodel')


def run_predict(path: str, pipeline_root: str, engine: str) -> Dict[str, object]:
  """predict.py on ``path`` in a fresh process: seconds, peak RSS, and its rows by path."""
  measured = common.run_measured(
      [sys.executable, 'predict.py', path, '--pipeline-root', pipeline_root, '--engine', engine,
       '--format', 'json'], echo=False)
  rows = {row['path']: row for row in map(json.loads, measured['stdout'].splitlines())}
  return {'wall_seconds': measured['wall_seconds'], 'peak_rss_bytes': measured['peak_rss_bytes'],
          'rows': rows}


def agreement(tflite: Dict[str, dict], saved_model: Dict[str, dict]) -> Dict[str, object]:
  """How the TFLite engine's answers compare with the SavedModel engine's, photo by photo."""
  paths = sorted(saved_model)
  assert sorted(tflite) == paths, 'the engines answered for different files'
  probability_gaps = [max(abs(tflite[p]['probabilities'][c] - saved_model[p]['probabilities'][c])
                          for c in saved_model[p]['probabilities']) for p in paths]
  score_gaps = [abs(tflite[p]['ood_score'] - saved_model[p]['ood_score']) for p in paths]
  differing = [
      {'path': os.path.relpath(p, DATA), 'tflite': {k: tflite[p][k] for k in (
          'class', 'probability', 'ood_score', 'out_of_distribution')},
       'savedmodel': {k: saved_model[p][k] for k in (
           'class', 'probability', 'ood_score', 'out_of_distribution')}}
      for p in paths if (tflite[p]['class'], tflite[p]['out_of_distribution'])
      != (saved_model[p]['class'], saved_model[p]['out_of_distribution'])]
  return {
      'images': len(paths),
      'same_class': sum(tflite[p]['class'] == saved_model[p]['class'] for p in paths),
      'same_ood_flag': sum(tflite[p]['out_of_distribution'] == saved_model[p]['out_of_distribution']
                           for p in paths),
      'ood_flagged': {'tflite': sum(tflite[p]['out_of_distribution'] for p in paths),
                      'savedmodel': sum(saved_model[p]['out_of_distribution'] for p in paths)},
      'max_probability_difference': max(probability_gaps),
      'max_ood_score_difference': max(score_gaps),
      'disagreements': differing,
  }


def decoders(model_dir: str, paths: List[str]) -> Dict[str, Dict[str, object]]:
  """Pillow's upright pixels (the TFLite engine's) against the Transform graph's (JPEGs with the
  accurate integer DCT) and against TensorFlow's default fast DCT (the Transform graph of models
  pushed before), and the classes and flags that each decoder's pixels change when fed to the
  same TFLite model."""
  # pylint: disable=g-import-not-at-top
  from ai_edge_litert.interpreter import Interpreter
  import tensorflow as tf
  from components.image_example_gen import image_properties
  from components.modules import exif_orientation
  from components.modules import tflite_model
  with open(tflite_model.tflite_path(model_dir), 'rb') as f:
    model = tflite_model.TFLiteModel(f.read(), Interpreter)
  baseline = tflite_model.OODBaseline.load(
      tflite_model.folder_file(model_dir, tflite_model.OOD_BASELINE_FILE))

  def answer(pixels):
    probabilities, embedding = model.of_pixels(pixels)
    return int(np.argmax(probabilities)), bool(baseline.scores(embedding[np.newaxis])[0]
                                               > baseline.threshold)

  def fast_dct(data):
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return exif_orientation.apply_orientation(image, exif_orientation.jpeg_orientation(data))

  others = {'transform_graph': exif_orientation.decode_upright, 'fast_dct': fast_dct}
  result = {name: {'images': len(paths), 'images_with_differing_pixels': 0,
                   'largest_channel_difference': 0, 'classes_changed': [],
                   'ood_flags_changed': []} for name in others}
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    pillow = image_properties.upright_pixels(data)
    pillow_class, pillow_flag = answer(pillow)
    for name, decode in others.items():
      pixels = decode(tf.constant(data)).numpy()
      gap = np.abs(pillow.astype(int) - pixels.astype(int))
      counts = result[name]
      counts['images_with_differing_pixels'] += bool(gap.any())
      counts['largest_channel_difference'] = max(counts['largest_channel_difference'],
                                                 int(gap.max()))
      other_class, other_flag = answer(pixels)
      if other_class != pillow_class:
        counts['classes_changed'].append(os.path.relpath(path, DATA))
      if other_flag != pillow_flag:
        counts['ood_flags_changed'].append(os.path.relpath(path, DATA))
  return result


def tflite_check_result(pipeline_root: str) -> Dict[str, object]:
  """The pipeline's own TFLiteCheck of the pushed model (its newest result)."""
  files = glob.glob(os.path.join(pipeline_root, 'TFLiteCheck', '*', '*', 'tflite_evaluation.json'))
  with open(max(files, key=os.path.getmtime)) as f:
    result = json.load(f)
  return {name: result[name] for name in ('example_count', 'saved_model', 'tflite', 'tflite_pixels',
                                          'accuracy_drop', 'max_accuracy_drop')}


def summary(runs: List[Dict[str, object]]) -> Dict[str, float]:
  seconds = [r['wall_seconds'] for r in runs]
  memory = [r['peak_rss_bytes'] / 2**20 for r in runs]
  return {'runs': len(runs), 'median_seconds': statistics.median(seconds),
          'min_seconds': min(seconds), 'max_seconds': max(seconds),
          'median_peak_rss_mib': statistics.median(memory), 'max_peak_rss_mib': max(memory)}


def to_markdown(result: Dict[str, object]) -> str:
  one, folder, agree = result['one_photo'], result['validation_folder'], result['agreement']
  decode, check = result['decoders'], result['tflite_check']
  lines = [
      '# predict.py from a cold start: TFLite engine vs SavedModel engine', '',
      f"Measured {result['date']} on {result['machine']} (load average "
      f"{result['load_average']:.1f} at the start), model {result['model_dir']} (MobileNetV2 "
      '1.0, 160 px, trained and pushed by the pipeline on cats_and_dogs_filtered). Each run a '
      'fresh process: `predict.py PATH --pipeline-root ROOT --engine E --format json`, from start '
      'to exit; peak RSS of the process.', '',
      '| engine | one photo: seconds, median (min-max) | one photo: peak RSS | '
      f"validation folder ({agree['images']} photos): seconds | peak RSS |",
      '|---|---|---|---|---|']
  for engine in ENGINES:
    s, f = one[engine], folder[engine]
    lines.append(f"| {engine} | {s['median_seconds']:.2f} ({s['min_seconds']:.2f}-"
                 f"{s['max_seconds']:.2f}), {s['runs']} runs | {s['median_peak_rss_mib']:.0f} MiB "
                 f"(max {s['max_peak_rss_mib']:.0f}) | {f['wall_seconds']:.1f} | "
                 f"{f['peak_rss_bytes'] / 2**20:.0f} MiB |")
  lines += [
      '', '## Agreement on the validation folder', '',
      f"Same class: {agree['same_class']} of {agree['images']}; same out-of-distribution flag: "
      f"{agree['same_ood_flag']} of {agree['images']} (flagged: TFLite "
      f"{agree['ood_flagged']['tflite']}, SavedModel {agree['ood_flagged']['savedmodel']}). "
      f"Largest difference of a probability {agree['max_probability_difference']:.4f}, of an "
      f"OOD score {agree['max_ood_score_difference']:.4f}.", '']
  for row in agree['disagreements']:
    lines.append(f"- {row['path']}: TFLite {row['tflite']}, SavedModel {row['savedmodel']}")
  lines += [
      '', "The pipeline's TFLiteCheck of this model on its test split "
      f"({check['example_count']} images): SavedModel accuracy "
      f"{check['saved_model']['accuracy']:.4f}, TFLite from the Transform graph's images "
      f"{check['tflite']['accuracy']:.4f}, from decoded pixels as predict.py "
      f"{check['tflite_pixels']['accuracy']:.4f}; drop {check['accuracy_drop']:.4f} of "
      f"{check['max_accuracy_drop']} allowed.", '',
      '## Decoders: Pillow (TFLite engine) vs TensorFlow', '']
  for name, what in (('transform_graph', "the Transform graph's (JPEGs with the accurate integer "
                                         'DCT)'),
                     ('fast_dct', "TensorFlow's default fast DCT (the Transform graph of models "
                                  'pushed before)')):
    d = decode[name]
    lines.append(
        f"- {what}: pixels differ in {d['images_with_differing_pixels']} of {d['images']} photos "
        f"(largest channel difference {d['largest_channel_difference']}); fed to the same TFLite "
        f"model they change {len(d['classes_changed'])} classes and "
        f"{len(d['ood_flags_changed'])} out-of-distribution flags.")
  return '\n'.join(lines) + '\n'


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pipeline-root', help='a run on the real data that pushed a model '
                      '(default: one is made with local_runner.py)')
  parser.add_argument('--runs', type=int, default=5, help='one-photo runs per engine')
  args = parser.parse_args()
  if not os.path.isdir(VALIDATION) or not os.path.exists(common.WEIGHTS):
    print(f'skipped: needs {DATA} and {common.WEIGHTS}')
    return 0
  pipeline_root = args.pipeline_root
  if not pipeline_root:
    workdir = tempfile.mkdtemp(prefix='predict-cold-start-')
    pipeline_root = os.path.join(workdir, 'pipeline_root')
    common.run_measured([sys.executable, 'local_runner.py', '--data-root', DATA, '--weights',
                         common.WEIGHTS, '--pipeline-root', pipeline_root, '--serving-dir',
                         os.path.join(workdir, 'serving')])
  load_average = os.getloadavg()[0]
  one_photo = {engine: [] for engine in ENGINES}
  for _ in range(args.runs):
    for engine in ENGINES:
      one_photo[engine].append(run_predict(ONE_PHOTO, pipeline_root, engine))
  folder = {engine: run_predict(VALIDATION, pipeline_root, engine) for engine in ENGINES}
  model_dir = resolve_model(None, pipeline_root)  # the version predict.py classified with
  result = {
      'date': datetime.date.today().isoformat(), 'machine': common.machine(),
      'load_average': load_average, 'model_dir': model_dir,
      'photo': os.path.relpath(ONE_PHOTO, DATA),
      'one_photo': {engine: summary(runs) for engine, runs in one_photo.items()},
      'one_photo_runs': {engine: [{k: r[k] for k in ('wall_seconds', 'peak_rss_bytes')}
                                  for r in runs] for engine, runs in one_photo.items()},
      'validation_folder': {engine: {k: r[k] for k in ('wall_seconds', 'peak_rss_bytes')}
                            for engine, r in folder.items()},
      'agreement': agreement(folder['tflite']['rows'], folder['savedmodel']['rows']),
      'decoders': decoders(model_dir, sorted(folder['savedmodel']['rows'])),
      'tflite_check': tflite_check_result(pipeline_root),
  }
  common.write_results('predict_cold_start', result, to_markdown(result))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
