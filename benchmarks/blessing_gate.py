"""Benchmark: how often do the two blessing gates bless a retrain of unchanged data, and a worse model?

A cheap, faithful proxy of the pipeline's retrains: the frozen MobileNetV2 backbone of the pipeline
benchmark (alpha 1.0, 160 px, ../shared/weights) turns every image into its pooled features once
(each training image also flipped, standing in for the Trainer's augmentation), through the
pipeline's own preprocessing (decode, bilinear resize, [-1, 1]). The pipeline's head (dropout 0.2,
Dense(2), adam 1e-4, batch 32, 20 epochs) is then trained on the 2000 training images with
different seeds (initialisation, order, dropout, flips), and deliberately weakened heads are trained
too (10, 6 or 3 epochs instead of 20; 10 % of the training labels flipped). Every model is scored on the pipeline's test
split (the 224 validation images that ImageExampleGen's hash puts there), and both gates judge every
ordered candidate/baseline pair:

* ``not-lower`` (the old gate): TFMA's change threshold on accuracy, -1e-10, checked on every slice
  (overall and per class, as TFMA applies a threshold without slicing specs);
* ``paired`` (the new default): the one-sided exact McNemar test of components/paired_accuracy.py
  on the overall slice, blessing unless p < 0.05.

(The absolute gate, --gate-threshold, is met by every model here and left out.) Writes
benchmarks/results/blessing_gate.{json,md}. CPU: one TensorFlow thread for the features, cached in
~/.cache/cats-dogs-tfx/ (8 minutes the first time on 2 busy CPUs); the heads train in NumPy.

    python -m benchmarks.blessing_gate [--seeds 20]
"""
import argparse
import itertools
import os
import sys
import time
from typing import Dict, List, Tuple

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
import numpy as np

from benchmarks import common
from benchmarks.common import DATA, WEIGHTS
from components.image_example_gen import splits
from components.paired_accuracy import worse_p_value

CLASSES = ('cats', 'dogs')
IMAGE_SIZE, ALPHA = 160, 1.0
SIGNIFICANCE = 0.05
CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'cats-dogs-tfx', 'blessing_gate_features.npz')
VARIANTS = {  # name -> (epochs, share of training labels flipped)
    'retrain': (20, 0.0),
    'weak_10_epochs': (10, 0.0),
    'weak_6_epochs': (6, 0.0),
    'weak_10pct_noisy_labels': (20, 0.1),
    'weak_3_epochs': (3, 0.0),
}


def _files(split_folder: str) -> List[Tuple[str, int]]:
  return [(os.path.join(DATA, split_folder, c, name), label) for label, c in enumerate(CLASSES)
          for name in sorted(os.listdir(os.path.join(DATA, split_folder, c)))]


def test_split_files() -> List[Tuple[str, int]]:
  """The validation images that ImageExampleGen puts in the test split (its hash, its fraction)."""
  config = {'split_folders': ['train', 'validation'], 'test_fraction': 0.2,
            'split_ratios': {'train': 8, 'eval': 1, 'test': 1}}
  return [(path, label) for path, label in _files('validation')
          if splits.assign_split(os.path.relpath(path, DATA), 'validation', config) == 'test']


def pooled_features() -> Dict[str, np.ndarray]:
  """Pooled backbone features of the training images (and their mirror images) and the test split."""
  if os.path.exists(CACHE):
    return dict(np.load(CACHE))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import preprocessing  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(1)  # the machine is shared
  tf.config.threading.set_inter_op_parallelism_threads(1)
  base = tf.keras.applications.MobileNetV2(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                           include_top=False, alpha=ALPHA, weights=WEIGHTS,
                                           pooling='avg')

  def features_of(files, flip=False):
    out = []
    for start in range(0, len(files), 64):
      batch = [open(path, 'rb').read() for path, _ in files[start:start + 64]]
      images = preprocessing.preprocess_images(tf.constant(batch), IMAGE_SIZE)
      out.append(base(tf.image.flip_left_right(images) if flip else images, training=False).numpy())
    return np.concatenate(out)

  train, test = _files('train'), test_split_files()
  result = {'train': features_of(train), 'train_flipped': features_of(train, flip=True),
            'train_labels': np.array([l for _, l in train]), 'test': features_of(test),
            'test_labels': np.array([l for _, l in test])}
  os.makedirs(os.path.dirname(CACHE), exist_ok=True)
  np.savez(CACHE, **result)
  return result


def train_head(data: Dict[str, np.ndarray], seed: int, epochs: int, flipped_labels: float) -> np.ndarray:
  """The pipeline's head on the pooled features (dropout 0.2, Dense(2) with Keras' Glorot-uniform
  initialisation, softmax cross-entropy, adam 1e-4 with Keras' defaults, batch 32), in NumPy: the
  same arithmetic as Keras without its per-step overhead. Returns the predicted class per test image."""
  rng = np.random.default_rng(seed)
  labels = data['train_labels'].copy()
  noisy = rng.random(len(labels)) < flipped_labels
  labels[noisy] = 1 - labels[noisy]
  dim = data['train'].shape[1]
  limit = np.sqrt(6.0 / (dim + 2))
  params = [rng.uniform(-limit, limit, (dim, 2)), np.zeros(2)]
  moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
  learning_rate, beta1, beta2, epsilon, step = 1e-4, 0.9, 0.999, 1e-7, 0
  for _ in range(epochs):  # each epoch sees every image once, mirrored or not at random
    flip = rng.random(len(labels)) < 0.5
    features = np.where(flip[:, None], data['train_flipped'], data['train'])
    order = rng.permutation(len(labels))
    for start in range(0, len(order), 32):
      batch = order[start:start + 32]
      kept = (rng.random((len(batch), dim)) >= 0.2) / 0.8  # inverted dropout, as Keras
      x = features[batch] * kept
      logits = x @ params[0] + params[1]
      probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
      probabilities /= probabilities.sum(axis=1, keepdims=True)
      probabilities[np.arange(len(batch)), labels[batch]] -= 1.0
      grad_logits = probabilities / len(batch)
      step += 1
      for param, grad, moment in zip(params, (x.T @ grad_logits, grad_logits.sum(axis=0)), moments):
        moment[0] = beta1 * moment[0] + (1 - beta1) * grad
        moment[1] = beta2 * moment[1] + (1 - beta2) * grad**2
        rate = learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        param -= rate * moment[0] / (np.sqrt(moment[1]) + epsilon)
  return np.argmax(data['test'] @ params[0] + params[1], axis=1)


def not_lower_gate(candidate_right: np.ndarray, baseline_right: np.ndarray, labels: np.ndarray) -> bool:
  """TFMA's change threshold -1e-10 on accuracy, on the overall slice and each class slice."""
  slices = [np.ones_like(labels, bool)] + [labels == c for c in range(len(CLASSES))]
  return all(candidate_right[s].mean() - baseline_right[s].mean() >= -1e-10 for s in slices)


def paired_gate(candidate_right: np.ndarray, baseline_right: np.ndarray) -> Tuple[bool, float]:
  wins = int(np.sum(candidate_right & ~baseline_right))
  losses = int(np.sum(baseline_right & ~candidate_right))
  p_value = worse_p_value(wins, losses)
  return p_value >= SIGNIFICANCE, p_value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seeds', type=int, default=20, help='models per variant (default 20)')
  args = parser.parse_args(argv)
  if not os.path.isdir(DATA) or not os.path.exists(WEIGHTS):
    print(f'skipped: {DATA} or {WEIGHTS} is absent')
    return 0
  start = time.monotonic()
  data = pooled_features()
  features_s = time.monotonic() - start
  labels = data['test_labels']
  right = {}
  for i, (name, setting) in enumerate(VARIANTS.items()):
    right[name] = [train_head(data, 1000 * i + seed, *setting) == labels for seed in range(args.seeds)]
    print(f'{name}: {args.seeds} models, mean test accuracy '
          f'{np.mean([r.mean() for r in right[name]]):.4f} ({time.monotonic() - start:.0f} s)', flush=True)
  accuracy = {name: [float(r.mean()) for r in models] for name, models in right.items()}
  baselines = right['retrain']
  results = {'test_images': int(len(labels)), 'seeds': args.seeds, 'significance': SIGNIFICANCE,
             'accuracy': {name: {'mean': float(np.mean(a)), 'min': min(a), 'max': max(a)}
                          for name, a in accuracy.items()},
             'blessed_rate': {}, 'features_s': round(features_s, 1)}
  for name, candidates in right.items():
    pairs = [(c, b) for (i, c), (j, b) in itertools.product(enumerate(candidates),
                                                           enumerate(baselines))
             if name != 'retrain' or i != j]
    paired = [paired_gate(c, b) for c, b in pairs]
    results['blessed_rate'][name] = {
        'pairs': len(pairs),
        'not-lower': float(np.mean([not_lower_gate(c, b, labels) for c, b in pairs])),
        'not-lower_overall_only': float(np.mean([c.mean() >= b.mean() for c, b in pairs])),
        'paired': float(np.mean([blessed for blessed, _ in paired])),
        'median_p_value': float(np.median([p for _, p in paired])),
        'mean_accuracy_change': float(np.mean([c.mean() - b.mean() for c, b in pairs])),
    }
  results['total_s'] = round(time.monotonic() - start, 1)
  lines = [
      '# Blessing gates under retraining noise', '',
      f"{args.seeds} models per variant (pooled MobileNetV2 1.0/160 features, the pipeline's head), "
      f"each scored on the pipeline's {len(labels)}-image test split; every ordered "
      'candidate/baseline pair judged by both gates. Baselines are the plain retrains.', '',
      '| candidate | test accuracy mean (min-max) | mean change vs baseline | pairs | '
      'blessed by not-lower (old) | (old, overall slice only) | blessed by paired, p >= 0.05 (new) '
      '| median p |',
      '|---|---|---|---|---|---|---|---|']
  for name, rate in results['blessed_rate'].items():
    acc = results['accuracy'][name]
    lines.append(f"| {name} | {acc['mean']:.4f} ({acc['min']:.4f}-{acc['max']:.4f}) | "
                 f"{rate['mean_accuracy_change']:+.4f} | {rate['pairs']} | {rate['not-lower']:.1%} | "
                 f"{rate['not-lower_overall_only']:.1%} | "
                 f"{rate['paired']:.1%} | {rate['median_p_value']:.3f} |")
  lines += ['', f"Features {results['features_s']} s (cached after the first run), "
            f"{results['total_s']} s in total on a shared 2-CPU machine (features: one TensorFlow thread, "
            '8 minutes the first time; heads: NumPy, one thread).',
            '', '`python -m benchmarks.blessing_gate`']
  common.write_results('blessing_gate', results, '\n'.join(lines) + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
