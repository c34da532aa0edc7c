"""Training the head of a frozen pretrained base on the base's pooled features, computed once.

A frozen base computes the same features for an image in every epoch, so the per-epoch path pays
its forward pass (~55 000 of them for 20 epochs of the tutorial's data) to train a head of a few
thousand weights. Here the Trainer runs the base once per eval image and once per training image
in each of a small fixed set of augmented views (``augmented_views``), then trains the head
(dropout + logits) on those arrays; each epoch draws one view per training image, so an epoch is
one pass over the training images with as many optimizer steps as the per-epoch path takes.

The head is made of the model's own layers (``split_transfer_model``): training it trains the
model that is saved, with nothing to copy back.
"""
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

from components.modules import model as model_lib

View = Callable[[tf.Tensor], tf.Tensor]
# Images per pass of the base: what its activations hold at once. run_fn on the tutorial's data
# (160 px, 4 views): the views side by side in batches of 32, peak RSS 1.80 GiB, features 45 s;
# one view at a time, 1.54 GiB, 38 s; and in batches of 8, 1.37 GiB, 42 s (one run each).
FEATURE_BATCH = 8
# (features [N, views, D], labels [N]) of one split.
Features = Tuple[np.ndarray, np.ndarray]


def _mirror(images: tf.Tensor) -> tf.Tensor:
  return tf.reverse(images, axis=[2])


def _rotation(turns: float) -> View:
  """A fixed rotation by ``turns`` of a full turn, drawn as the per-epoch path's RandomRotation."""
  layer = tf.keras.layers.RandomRotation((turns, turns), fill_mode=model_lib.ROTATION_FILL_MODE)
  return lambda images: layer(images, training=True)


def augmented_views(rotation_factor: float) -> List[View]:
  """The training views: the image, its mirror image and, when ``rotation_factor`` > 0, the image
  turned left and its mirror image turned right, each by half the largest random rotation."""
  views = [tf.identity, _mirror]
  if rotation_factor > 0:
    turn_left, turn_right = _rotation(rotation_factor / 2), _rotation(-rotation_factor / 2)
    views += [turn_left, lambda images: turn_right(_mirror(images))]
  return views


def split_transfer_model(model: tf.keras.Model) -> Tuple[tf.keras.Model, tf.keras.Model]:
  """(images -> pooled features, pooled features -> logits) of a transfer model, sharing its layers."""
  pooling = next(layer for layer in model.layers
                 if isinstance(layer, tf.keras.layers.GlobalAveragePooling2D))
  extractor = tf.keras.Model(model.input, pooling.output, name='pooled_features')
  head_input = tf.keras.Input(pooling.output.shape[1:], name='pooled_features')
  x = head_input
  for layer in model.layers[model.layers.index(pooling) + 1:]:
    x = layer(x)
  return extractor, tf.keras.Model(head_input, x, name='head')


def extract_features(extractor: tf.keras.Model, images: tf.data.Dataset,
                     views: Sequence[View]) -> Features:
  """Pooled features [N, len(views), D] of every image of ``images`` ((images, labels) batches) in
  each view, and the labels [N]; one pass over the data."""

  @tf.function(input_signature=[tf.TensorSpec(extractor.input.shape, tf.float32)])
  def features_of(batch):
    return extractor(batch, training=False)

  features, labels = [], []
  # One view at a time, in batches of FEATURE_BATCH: the views' passes in one graph ran side by
  # side and held the base's activations of every view's batch at once.
  for batch, batch_labels in images.unbatch().batch(FEATURE_BATCH):
    features.append(np.stack([features_of(view(batch)).numpy() for view in views], axis=1))
    labels.append(batch_labels.numpy())
  if not features:
    raise ValueError('no examples to compute features of: the split is empty')
  return np.concatenate(features), np.concatenate(labels)


def fit_head(head: tf.keras.Model, train: Features, eval_: Features, epochs: int, batch_size: int,
             learning_rate: float, callbacks: List[tf.keras.callbacks.Callback]
             ) -> Dict[str, List[float]]:
  """Trains ``head`` with adam; the per-epoch metrics under the names of ``model.fit``'s history."""
  def one_view_each(features, label):
    view = tf.random.uniform([], maxval=tf.shape(features)[0], dtype=tf.int32)
    return features[view], label

  train_features, train_labels = train
  train_ds = (tf.data.Dataset.from_tensor_slices((train_features, train_labels))
              .shuffle(len(train_labels), reshuffle_each_iteration=True)
              .map(one_view_each, num_parallel_calls=tf.data.AUTOTUNE)
              .batch(batch_size)
              .prefetch(tf.data.AUTOTUNE))
  eval_ds = tf.data.Dataset.from_tensor_slices((eval_[0][:, 0], eval_[1])).batch(batch_size)
  model_lib.compile_model(head, learning_rate)
  history = head.fit(train_ds, validation_data=eval_ds, epochs=epochs, callbacks=callbacks,
                     verbose=2)
  return history.history


def train_head_on_features(model: tf.keras.Model, train_images: tf.data.Dataset,
                           eval_images: tf.data.Dataset, rotation_factor: float, augment: bool,
                           epochs: int, batch_size: int, learning_rate: float,
                           callbacks: List[tf.keras.callbacks.Callback]
                           ) -> Tuple[Dict[str, List[float]], Features, Features]:
  """Trains the head of ``model`` (frozen base) in place on features computed once; returns the
  history and the features of the training views and of the eval images (view 0 is the image as
  it is: the base's embedding of it, which embedding.py reuses).

  ``train_images`` and ``eval_images`` are unshuffled, unaugmented (images, labels) batches.
  """
  extractor, head = split_transfer_model(model)
  views = augmented_views(rotation_factor) if augment else [tf.identity]
  start = time.time()
  train = extract_features(extractor, train_images, views)
  eval_ = extract_features(extractor, eval_images, [tf.identity])
  print(f'Pooled features of {len(train[1])} training images x {len(views)} views and '
        f'{len(eval_[1])} eval images: {time.time() - start:.0f}s', flush=True)
  return fit_head(head, train, eval_, epochs, batch_size, learning_rate, callbacks), train, eval_
