"""Benchmark: embedding drift, prediction drift and the OOD flag on the tutorial's real photos.

The model is the pipeline's (MobileNetV2 alpha 1.0, 160 px, the ../shared weights, frozen; the
Transform graph of components/modules/preprocessing.py), its head a logistic regression on the
pooled features of the 2000 training images (cached by benchmarks/blessing_gate.py), saved with
every signature and the baseline the Trainer stores (components/modules/embedding.py): the 2000
training embeddings, and the OOD threshold and probabilities of the eval split (the validation
images that ImageExampleGen's hash does not put in the test split). It measures

* false positives of the embedding test (components/drift/embedding_drift.py): disjoint random halves
  of the training images (>= 20 resamples), the validation images against the training images
  (all of them, and 20 random halves of them), and prediction drift on random halves of the
  validation images;
* detection: semantic shifts made from the validation photos, checked end to end by
  ``validate.py`` (today's pixel-statistics check and the embedding check) with the model's
  accuracy on each;
* out of distribution: pictures that are neither cats nor dogs, made here (the sample data's
  shapes, procedural textures, photos cut into shuffled tiles), against the test split;
* speed: seconds per 1000 images embedded (decode, resize, backbone) on this machine's CPUs, and
  validate.py's wall time on the 1000 validation images.

Writes benchmarks/results/embedding_drift_benchmark.{json,md}. Skips when ../shared is absent.

    nice python -m benchmarks.embedding_drift_benchmark [--resamples 20]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
import numpy as np

from benchmarks import common
from benchmarks import drift_benchmark
from benchmarks.embedding_drift_cases import SHIFTS, sample_shapes, shuffled_tiles, textures
from benchmarks.blessing_gate import ALPHA, IMAGE_SIZE, pooled_features, test_split_files
from benchmarks.common import DATA, WEIGHTS
from components.drift import embedding_drift
from components.drift.drift_thresholds import DriftThresholds

CLASSES = ('cats', 'dogs')


def _validation_files() -> List[Tuple[str, int]]:
  return [(os.path.join(DATA, 'validation', c, name), label) for label, c in enumerate(CLASSES)
          for name in sorted(os.listdir(os.path.join(DATA, 'validation', c)))]


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


def transform_output(work: str):
  """The Transform graph of the pipeline's preprocessing_fn at 160 px (TFT on Beam)."""
  import functools  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  import tensorflow_transform.beam as tft_beam  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # pylint: disable=g-import-not-at-top
  from components.modules import features, image_budget, preprocessing  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  raw = [{features.IMAGE_KEY: [_read(path)], features.LABEL_KEY: [label]}
         for path, label in _validation_files()[::250]]
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}))
  out_dir = os.path.join(work, 'transform')
  with tft_beam.Context(temp_dir=os.path.join(work, 'tft_tmp'), force_tf_compat_v1=False):
    transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(functools.partial(
        preprocessing.preprocessing_fn, custom_config={
            'image_size': IMAGE_SIZE, **image_budget.as_settings(image_budget_of(None))}))
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(out_dir)


def build_model(train: np.ndarray, train_labels: np.ndarray):
  """The pipeline's transfer model with a logistic-regression head fitted on ``train`` features."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from components.modules import model as model_lib  # pylint: disable=g-import-not-at-top
  model = model_lib.build_transfer_model(2, IMAGE_SIZE, ALPHA, WEIGHTS, dropout=0.2)
  head = LogisticRegression(C=0.1, max_iter=2000).fit(train, train_labels)
  w, b = head.coef_[0], head.intercept_[0]  # softmax of (-z/2, z/2) is the logistic of z
  model.get_layer('logits').set_weights([np.stack([-w / 2, w / 2], axis=1).astype(np.float32),
                                         np.array([-b / 2, b / 2], np.float32)])
  return model


def embed_files(model, files: List[str]) -> Tuple[np.ndarray, float, float]:
  """(pooled features, wall seconds, CPU seconds of this process) of image files through the
  Transform graph's preprocessing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import embedding, preprocessing  # pylint: disable=g-import-not-at-top
  extractor = embedding.embedding_and_logits_model(model)
  start, cpu_start, out = time.time(), time.process_time(), []
  for i in range(0, len(files), 64):
    images = preprocessing.preprocess_images(
        tf.constant([_read(path) for path in files[i:i + 64]]), IMAGE_SIZE)
    out.append(extractor(images, training=False)[0].numpy())
  return np.concatenate(out), time.time() - start, time.process_time() - cpu_start


# --- the measurements ----------------------------------------------------------------------------

def _test_result(result: embedding_drift.EmbeddingDrift) -> Dict[str, float]:
  return {'p_value': round(result.p_value, 4), 'auc': round(result.auc, 4),
          'mmd_significant': result.p_value < result.alpha, 'drifted': result.drifted}


def _rates(results: List[Dict[str, float]]) -> Dict[str, float]:
  return {'resamples': len(results),
          'drift_rate': float(np.mean([r['drifted'] for r in results])),
          'mmd_significant_rate': float(np.mean([r['mmd_significant'] for r in results])),
          'max_auc': max(r['auc'] for r in results),
          'median_p_value': float(np.median([r['p_value'] for r in results]))}


def false_positives(train: np.ndarray, validation: np.ndarray, validation_probabilities: np.ndarray,
                    resamples: int, thresholds: DriftThresholds) -> dict:
  """Same-distribution comparisons: how often each test flags them."""
  rng = np.random.default_rng(0)
  test = lambda a, b, seed: _test_result(embedding_drift.embedding_drift(  # pylint: disable=g-long-lambda
      a, b, thresholds.embedding_p_value, thresholds.embedding_auc, seed=seed))
  halves = []
  for i in range(resamples):
    order = rng.permutation(len(train))
    halves.append(test(train[order[:len(train) // 2]], train[order[len(train) // 2:]], i))
  validation_halves = [test(train, validation[rng.permutation(len(validation))[:len(validation) // 2]],
                            i) for i in range(resamples)]
  predictions = []
  for i in range(resamples):
    order = rng.permutation(len(validation_probabilities))
    half = len(order) // 2
    rows = embedding_drift.prediction_drift(
        validation_probabilities[order[:half]], validation_probabilities[order[half:]], CLASSES,
        thresholds.label_linf, thresholds.confidence_js)
    predictions.append({row.feature: (row.score, row.flagged) for row in rows})
  return {
      'training_halves': {**_rates(halves), 'runs': halves},
      'validation_vs_train_all': test(train, validation, 0),
      'validation_halves_vs_train': {**_rates(validation_halves), 'runs': validation_halves},
      'prediction_drift_validation_halves': {
          feature: {'flag_rate': float(np.mean([p[feature][1] for p in predictions])),
                    'max_score': round(max(p[feature][0] for p in predictions), 4)}
          for feature in predictions[0]},
  }


def run_validate(data_root: str, model_dir: str, baseline_flags: List[str], output_dir: str,
                 beam_args: List[str]) -> dict:
  """validate.py end to end: today's check (TFDV) and the embedding check, with its wall time."""
  import re  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  import validate  # pylint: disable=g-import-not-at-top
  from components.drift import drift_comparison  # pylint: disable=g-import-not-at-top
  args = validate.build_parser().parse_args(
      ['--data-root', data_root, '--output-dir', output_dir, '--model', model_dir,
       *baseline_flags, *[f'--beam-arg={arg}' for arg in beam_args]])
  start = time.time()
  status, report = validate.validate(args)
  seconds = time.time() - start
  pixel_rows = drift_comparison.findings(
      tfdv.load_anomalies_text(os.path.join(output_dir, 'anomalies.pbtxt')),
      drift_comparison.COMPARED_FEATURES)
  embedding_rows = {}
  for line in report.splitlines():
    match = re.match(r'^(embedding|predicted class|confidence)\s+.*?\s([\d.]+)\s+([\d.]+)\s+'
                     r'(DRIFT|ok)(?:: (.*))?$', line)
    if match:
      embedding_rows[match.group(1)] = {'score': float(match.group(2)),
                                        'threshold': float(match.group(3)),
                                        'flagged': match.group(4) == 'DRIFT',
                                        'detail': match.group(5) or ''}
  ood = re.search(r'([\d.]+)% of them out of distribution', report)
  return {
      'exit_status': status, 'validate_seconds': round(seconds, 1),
      'pixel_check_flagged': sorted({r.feature for r in pixel_rows if r.flagged}),
      'pixel_check_largest_score': max(
          ((round(r.score, 4), f'{r.feature} {r.check}') for r in pixel_rows
           if r.score is not None), default=None),
      'embedding_check': embedding_rows,
      'out_of_distribution_share': float(ood.group(1)) / 100 if ood else None,
  }


def accuracy(loaded, data_root: str) -> float:
  files = [(os.path.join(data_root, c, name), label) for label, c in enumerate(CLASSES)
           for name in sorted(os.listdir(os.path.join(data_root, c)))]
  _, probabilities = loaded.embed_images([_read(path) for path, _ in files])
  return float(np.mean(probabilities.argmax(axis=1) == np.array([label for _, label in files])))


def ood_rate(loaded, files: List[str]) -> Dict[str, float]:
  """Share of ``files`` that the model's embedding signature flags out of distribution."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import embedding, features  # pylint: disable=g-import-not-at-top
  flags = []
  for i in range(0, len(files), 64):
    out = loaded.embed(**{features.IMAGE_BYTES_INPUT: tf.constant(
        [_read(path) for path in files[i:i + 64]])})
    flags.extend(out[embedding.OOD_FLAG_OUTPUT].numpy().tolist())
  return {'images': len(files), 'flagged_rate': round(float(np.mean(flags)), 4)}


def save_model(model, baseline, work: str) -> str:
  from components.modules import embedding, signatures  # pylint: disable=g-import-not-at-top
  model_dir = os.path.join(work, 'model')
  signatures.save_served(model, model_dir, {
      **signatures.make_serving_signatures(model, transform_output(work), CLASSES),
      **embedding.make_embedding_signature(model, baseline)})
  return model_dir


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--resamples', type=int, default=20)
  parser.add_argument('--per-class', type=int, default=200, help='images per class of each shift')
  args = parser.parse_args(argv)
  if not os.path.isdir(DATA):
    print(f'skipped: {DATA} is absent')
    return 0
  from components.modules import embedding  # pylint: disable=g-import-not-at-top
  thresholds = DriftThresholds()
  beam_args = ['--direct_running_mode=multi_processing', '--direct_num_workers=2']
  cached = pooled_features()
  train, train_labels = cached['train'], cached['train_labels']
  model = build_model(train, train_labels)
  files = _validation_files()
  test_paths = {path for path, _ in test_split_files()}
  is_test = np.array([path in test_paths for path, _ in files])
  labels = np.array([label for _, label in files])
  load_before = os.getloadavg()[0]
  validation, seconds, cpu_seconds = embed_files(model, [path for path, _ in files])
  print(f'{len(files)} validation images embedded in {seconds:.1f}s ({cpu_seconds:.1f} CPU s)',
        flush=True)
  kernel, bias = model.get_layer('logits').get_weights()
  logits = validation @ kernel + bias
  probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
  probabilities /= probabilities.sum(axis=1, keepdims=True)
  eval_scores = embedding.knn_distance(validation[~is_test], train).numpy()
  baseline = embedding.EmbeddingBaseline(
      train, probabilities[~is_test].astype(np.float32),
      float(np.quantile(eval_scores, 1 - embedding.OOD_FALSE_POSITIVE_RATE)))
  results = {
      'model': f'MobileNetV2 alpha {ALPHA}, {IMAGE_SIZE} px, {os.path.basename(WEIGHTS)}, '
               'frozen; logistic-regression head on the 2000 training images',
      'thresholds': vars(thresholds), 'cpus': os.cpu_count(),
      'seconds_per_1000_images_embedded': round(seconds / len(files) * 1000, 1),
      'cpu_seconds_per_1000_images_embedded': round(cpu_seconds / len(files) * 1000, 1),
      'load_average_while_embedding': [round(load_before, 2), round(os.getloadavg()[0], 2)],
      'validation_accuracy': round(float(np.mean(probabilities.argmax(axis=1) == labels)), 4),
      'ood_threshold': round(baseline.ood_threshold, 4),
      'ood_calibration': f'{int((~is_test).sum())} eval-split images, '
                         f'{embedding.OOD_FALSE_POSITIVE_RATE:.0%} false positives'}
  start = time.time()
  results['false_positives'] = false_positives(train, validation, probabilities, args.resamples,
                                               thresholds)
  print(f"false positives ({time.time() - start:.0f}s): "
        f"{json.dumps({k: v for k, v in results['false_positives'].items()}, default=str)[:600]}",
        flush=True)
  work = tempfile.mkdtemp(prefix='embedding_drift_benchmark_')
  try:
    model_dir = save_model(model, baseline, work)
    loaded = embedding.LoadedEmbeddingModel.load(model_dir)
    baseline_flags = drift_benchmark.make_baseline(os.path.join(DATA, 'train'), work, beam_args)
    cases = {'validation_as_is': (drift_benchmark.fresh_sample, 500)}
    cases.update({name: (make, args.per_class) for name, make in SHIFTS.items()})
    results['cases'] = {}
    for name, (make, per_class) in cases.items():
      data_root = make(os.path.join(DATA, 'validation'), os.path.join(work, name), per_class)
      case = run_validate(data_root, model_dir, baseline_flags, os.path.join(work, f'{name}_out'),
                          beam_args)
      case['images'] = 2 * per_class
      case['accuracy'] = round(accuracy(loaded, data_root), 4)
      results['cases'][name] = case
      print(f'{name}: {json.dumps(case)}', flush=True)
    results['out_of_distribution'] = {
        'validation_test_split_cats_dogs': ood_rate(loaded, sorted(test_paths)),
        'sample_data_shapes': ood_rate(loaded, sample_shapes()),
        'procedural_textures': ood_rate(loaded, textures(os.path.join(work, 'textures'), 100)),
        'photos_as_shuffled_8x8_tiles': ood_rate(loaded, shuffled_tiles(
            os.path.join(work, 'tiles'), [path for path, _ in files[::10]])),
    }
    print(f"out of distribution: {results['out_of_distribution']}", flush=True)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  write_results(results)
  return 0


def write_results(results: dict) -> None:
  fp = results['false_positives']
  lines = [
      '# Embedding drift benchmark', '',
      f"Model: {results['model']}. Thresholds: {results['thresholds']}. Embedding drift = MMD "
      'permutation p-value below embedding_p_value AND domain-classifier ROC AUC at least '
      f"embedding_auc. {results['cpus']} CPUs.", '',
      '## False positives (same distribution)', '',
      '| comparison | resamples | flagged as drift | MMD p < alpha | largest AUC | median p |',
      '|---|---|---|---|---|---|']
  for name in ('training_halves', 'validation_halves_vs_train'):
    r = fp[name]
    lines.append(f"| {name} | {r['resamples']} | {r['drift_rate']:.0%} | "
                 f"{r['mmd_significant_rate']:.0%} | {r['max_auc']:.3f} | {r['median_p_value']:.3f} |")
  r = fp['validation_vs_train_all']
  lines.append(f"| validation (1000) vs train (2000) | 1 | {'yes' if r['drifted'] else 'no'} | "
               f"{'yes' if r['mmd_significant'] else 'no'} | {r['auc']:.3f} | {r['p_value']:.3f} |")
  lines += ['', 'Prediction drift on random halves of the validation images: ' + '; '.join(
      f"{feature}: flagged {v['flag_rate']:.0%}, largest score {v['max_score']}"
      for feature, v in fp['prediction_drift_validation_halves'].items()), '',
            '## Cases through validate.py', '',
            '| case | images | exit | pixel check flagged | largest pixel score | embedding AUC '
            '| embedding | predicted class | confidence | OOD share | accuracy | validate s |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|']
  for name, case in results['cases'].items():
    e = case['embedding_check']
    cell = lambda key: (f"{e[key]['score']:.3f} {'DRIFT' if e[key]['flagged'] else 'ok'}"  # pylint: disable=cell-var-from-loop
                        if key in e else '-')
    largest = case['pixel_check_largest_score']
    lines.append(
        f"| {name} | {case['images']} | {case['exit_status']} | "
        f"{', '.join(case['pixel_check_flagged']) or 'none'} | "
        f"{largest[0]} ({largest[1]}) | {e.get('embedding', {}).get('score', '-')} | "
        f"{'DRIFT' if e.get('embedding', {}).get('flagged') else 'ok'} | {cell('predicted class')} | "
        f"{cell('confidence')} | {case['out_of_distribution_share']:.1%} | {case['accuracy']:.3f} | "
        f"{case['validate_seconds']} |")
  lines += ['', f"## Out of distribution (threshold {results['ood_threshold']}, calibrated on "
            f"{results['ood_calibration']})", '', '| images | count | flagged |', '|---|---|---|']
  for name, r in results['out_of_distribution'].items():
    lines.append(f"| {name} | {r['images']} | {r['flagged_rate']:.1%} |")
  lines += ['', f"Speed: {results['seconds_per_1000_images_embedded']} s wall, "
            f"{results['cpu_seconds_per_1000_images_embedded']} CPU s per 1000 images embedded "
            f"(decode, resize, backbone; {results['cpus']} CPUs, load average "
            f"{results['load_average_while_embedding']} before and after, the machine shared); "
            f"validation accuracy {results['validation_accuracy']}."]
  common.write_results('embedding_drift_benchmark', results, '\n'.join(lines) + '\n')


if __name__ == '__main__':
  sys.exit(main())
