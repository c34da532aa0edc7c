"""What any imbalance handling can win back when one class is cut: read by own_images_benchmark.py.

A pipeline run of the imbalanced cases costs minutes, so they measure a few cuts, and one cut's
gain moves by a couple of points with the images kept and the head's random draws. Here the head
alone is trained, as the pipeline trains it (tuner.HeadTuner picks the learning rate and dropout,
then frozen_features.fit_head trains it), on the base's features that the uncut run's BulkInferrer
wrote, over many cuts: each class in turn cut to a share of its training images by several
seeds. Each cut is scored five ways (three trainings, two corrections after training):

* ``none``: no handling (``--class-weights none``);
* ``balanced``: balanced class weights (the pipeline's default);
* ``oversampled``: balanced sampling instead of weights: every class's images repeated until it
  has as many as the largest (a repeat draws its own view each epoch), the eval loss balanced;
* ``adjusted``: the ``none`` head's logits less the log of each class's share of the training split
  (post-hoc logit adjustment, Menon et al. 2021);
* ``calibrated``: the ``none`` head's logits plus one offset per class, fitted on the eval split
  (which the cut leaves whole) to minimise its class-balanced cross-entropy: what held-out images
  can correct of the head's bias towards the large classes.

The uncut training split, trained ``none`` and ``balanced`` once per seed, is the ceiling: a
handling can win back at most what the cut cost.
"""
import tempfile
from typing import Dict, List, Sequence, Tuple

import keras_tuner
import numpy as np
import tensorflow as tf

from components import class_metrics
from components.modules import frozen_features
from components.modules import tuner as tuner_lib

MODES = ('none', 'balanced', 'oversampled', 'adjusted', 'calibrated')


def cut(labels: np.ndarray, class_id: int, share: float, seed: int) -> np.ndarray:
  """Indices of the training images kept when ``class_id`` keeps a seeded random ``share`` of its
  images (at least one) and every other class keeps all of its."""
  of_class = np.flatnonzero(labels == class_id)
  kept = np.random.default_rng(seed).choice(of_class, max(1, round(len(of_class) * share)),
                                            replace=False)
  return np.sort(np.concatenate([np.flatnonzero(labels != class_id), kept]))


def oversampled(labels: np.ndarray) -> np.ndarray:
  """Indices that repeat every class's images until it has as many as the largest class."""
  largest = np.bincount(labels).max()
  return np.concatenate([np.resize(np.flatnonzero(labels == c), largest)
                         for c in np.unique(labels)])


def adjusted(logits: np.ndarray, train_labels: np.ndarray, num_classes: int) -> np.ndarray:
  """``logits`` less the log of each class's share of the training labels."""
  shares = np.bincount(train_labels, minlength=num_classes) / len(train_labels)
  return logits - np.log(np.maximum(shares, 1e-12))


def calibrated(logits: np.ndarray, eval_logits: np.ndarray, eval_labels: np.ndarray,
               num_classes: int, steps: int = 500) -> np.ndarray:
  """``logits`` plus the per-class offsets that minimise the class-balanced cross-entropy of
  ``eval_logits`` plus offsets (gradient descent; the loss is convex in the offsets)."""
  class_weight = frozen_features.balancing_weights(eval_labels, num_classes)
  weights = np.array([class_weight[label] for label in eval_labels])
  weights /= weights.sum()
  targets = np.eye(num_classes)[eval_labels]
  offsets = np.zeros(num_classes)
  for _ in range(steps):
    shifted = eval_logits + offsets
    probabilities = np.exp(shifted - shifted.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    offsets -= weights @ (probabilities - targets)
  return logits + offsets


def balanced_accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
  """The Evaluator's balanced accuracy (class_metrics.py) of arg-max predictions."""
  classes = 1 + max(predicted.max(), labels.max())
  matrix = np.zeros((classes, classes))
  np.add.at(matrix, (labels, predicted), 1)
  return class_metrics.class_balanced_scores(matrix)[class_metrics.BALANCED_ACCURACY]


def trained_head(train: frozen_features.Features, eval_: frozen_features.Features,
                 num_classes: int, class_weight, trials: int, epochs: int,
                 seed: int) -> tf.keras.Model:
  """The head that the Tuner's best hyperparameters train (as the pipeline: ``trials`` trials,
  then the Trainer's fit)."""
  tf.random.set_seed(seed)
  tuner = tuner_lib.HeadTuner(
      hyperparameters=tuner_lib.search_space(),
      objective=keras_tuner.Objective(tuner_lib.OBJECTIVE, 'min'), max_trials=trials, seed=seed,
      directory=tempfile.mkdtemp(prefix='imbalance-study-'), project_name='head', overwrite=True)
  tuner.search(train=train, eval_=eval_, num_classes=num_classes, epochs=epochs,
               class_weight=class_weight, verbose=0)
  best = tuner.get_best_hyperparameters(1)[0].values
  head = frozen_features.head_model(train[0].shape[-1], num_classes, best[tuner_lib.DROPOUT])
  frozen_features.fit_head(head, train, eval_, epochs, best[tuner_lib.LEARNING_RATE],
                           class_weight)
  return head


def logits_of(head: tf.keras.Model, split: frozen_features.Features) -> np.ndarray:
  """The head's logits for a split's first view (the image as it is)."""
  return head(split[0][:, 0], training=False).numpy()


def one_cut(train: frozen_features.Features, eval_: frozen_features.Features,
            test: frozen_features.Features, num_classes: int, kept: np.ndarray, trials: int,
            epochs: int, seed: int) -> Dict[str, np.ndarray]:
  """{mode: the test predictions} of the training images ``kept``."""
  features, labels = train[0][kept], train[1][kept]
  head = lambda train_, weights: trained_head(train_, eval_, num_classes, weights, trials, epochs,
                                              seed)
  plain_head = head((features, labels), None)
  plain = logits_of(plain_head, test)
  repeated = oversampled(labels)
  # all weights 1: nothing reweighted, but fit_head balances the eval loss it stops on
  equal = {c: 1.0 for c in range(num_classes)}
  predicted = lambda head_: logits_of(head_, test).argmax(1)
  return {'none': plain.argmax(1),
          'balanced': predicted(head((features, labels),
                                     frozen_features.balancing_weights(labels, num_classes))),
          'oversampled': predicted(head((features[repeated], labels[repeated]), equal)),
          'adjusted': adjusted(plain, labels, num_classes).argmax(1),
          'calibrated': calibrated(plain, logits_of(plain_head, eval_), eval_[1],
                                   num_classes).argmax(1)}


def study(splits: Dict[str, frozen_features.Features], class_names: Sequence[str], share: float,
          seeds: Sequence[int], trials: int, epochs: int) -> Dict[str, object]:
  """Every class cut to ``share`` by every seed, and the uncut ceiling per seed: balanced accuracies, the cut
  class's recall, and the means."""
  train, eval_, test = splits['train'], splits['eval'], splits['test']
  num_classes, test_labels = len(class_names), test[1]
  score = lambda predicted: balanced_accuracy(predicted, test_labels)
  uncut = lambda weights, seed: score(logits_of(trained_head(
      train, eval_, num_classes, weights, trials, epochs, seed), test).argmax(1))
  ceiling = [{'none': uncut(None, seed),
              'balanced': uncut(frozen_features.balancing_weights(train[1], num_classes), seed)}
             for seed in seeds]
  cuts = []
  for seed in seeds:
    for class_id, name in enumerate(class_names):
      kept = cut(train[1], class_id, share, seed)
      predicted = one_cut(train, eval_, test, num_classes, kept, trials, epochs, seed)
      cuts.append({'class': name, 'seed': seed, 'kept': int(np.sum(train[1][kept] == class_id)),
                   'had': int(np.sum(train[1] == class_id)),
                   **{mode: score(predicted[mode]) for mode in MODES},
                   'recall': {mode: float(np.mean(predicted[mode][test_labels == class_id]
                                                  == class_id)) for mode in MODES}})
  mean = lambda rows, key: float(np.mean([row[key] for row in rows]))
  return {'share': share, 'seeds': list(seeds), 'trials': trials, 'test_images': len(test_labels),
          'ceiling': ceiling, 'cuts': cuts,
          'mean': {mode: mean(cuts, mode) for mode in MODES},
          'uncut_mean': {mode: mean(ceiling, mode) for mode in ('none', 'balanced')}}


def mean_gain(cuts: Sequence[Dict[str, object]], mode: str) -> Tuple[float, float]:
  """The mean over the cuts of ``mode``'s balanced accuracy less ``none``'s, and its standard
  error (the cuts paired; 0 for a single cut)."""
  gain = np.array([cut[mode] - cut['none'] for cut in cuts])
  error = np.std(gain, ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else 0.0
  return float(np.mean(gain)), float(error)


def under_or_over(shortfall: float) -> str:
  """'0.5 points under' for a shortfall of 0.005, '0.2 points over' for -0.002 (never '-0.0')."""
  return f"{abs(100 * shortfall):.1f} points {'under' if shortfall >= 0 else 'over'}"


def markdown(result: Dict[str, object]) -> List[str]:
  """A row per cut, the means, and what the cut cost against what each handling won back."""
  rows = [f"| {c['class']} | {c['seed']} | {c['kept']} of {c['had']} | "
          + ' | '.join(f'{c[mode]:.4f}' for mode in MODES)
          + f" | {100 * (c['balanced'] - c['none']):+.1f} | "
          + ' / '.join(f"{c['recall'][mode]:.2f}" for mode in MODES) + ' |'
          for c in result['cuts']]
  mean, uncut = result['mean'], result['uncut_mean']
  cost = uncut['balanced'] - mean['none']
  gains = ', '.join('{} {:+.1f} ± {:.1f}'.format(mode, *(100 * x for x in mean_gain(
      result['cuts'], mode))) for mode in MODES[1:])
  return [
      f"The head alone (benchmarks/imbalance_study.py), as the Tuner ({result['trials']} trials) "
      f"and the Trainer train it, on the uncut run's features: each class cut to "
      f"{result['share']:.3g} of its training images by seeds "
      f"{', '.join(map(str, result['seeds']))}, {result['test_images']} test images.", '',
      '| class cut | seed | kept | none | balanced (default) | oversampled | adjusted | calibrated | '
      'gain of balanced (points) | cut class recall, none / balanced / oversampled / adjusted / '
      'calibrated |',
      '|---|---|---|---|---|---|---|---|---|---|', *rows,
      '| mean | | | ' + ' | '.join(f'{mean[mode]:.4f}' for mode in MODES)
      + f" | {100 * (mean['balanced'] - mean['none']):+.1f} | |", '',
      f"Uncut (the ceiling), mean over the seeds: balanced {uncut['balanced']:.4f}, none "
      f"{uncut['none']:.4f}. The cut costs {100 * cost:.1f} points (uncut balanced less cut "
      f"none); won back on average (± the standard error over the cuts, paired): {gains}; "
      f"the default ends {under_or_over(uncut['balanced'] - mean['balanced'])} the uncut head.", '']
