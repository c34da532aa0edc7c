"""The tutorial's transfer model: a frozen MobileNetV2 base, pooled features, dropout, logits."""
import os
from typing import Optional

import tensorflow as tf

from components.modules import features

IMAGENET = 'imagenet'
NO_WEIGHTS = 'none'


def resolve_weights(weights: str) -> Optional[str]:
  """Maps the ``weights`` option to what Keras takes: 'imagenet' (downloads), a local .h5, or None."""
  if weights == IMAGENET:
    return IMAGENET
  if weights.lower() == NO_WEIGHTS:
    return None
  if not tf.io.gfile.exists(weights):
    raise FileNotFoundError(
        f'MobileNetV2 weights file {weights!r} does not exist; pass "imagenet" (download), '
        '"none" (random initialisation) or the path of a Keras no_top .h5 file.')
  if weights.startswith(('gs://', 's3://')):
    local_copy = os.path.join(os.environ.get('TMPDIR', '/tmp'), os.path.basename(weights))
    tf.io.gfile.copy(weights, local_copy, overwrite=True)
    return local_copy
  return weights


def build_base(image_size: int, alpha: float, weights: str) -> tf.keras.Model:
  """MobileNetV2 without its classifier; frozen when it carries pretrained weights.

  A randomly initialised base (``weights='none'``) computes no useful features while frozen, so
  it is trained with the head instead.
  """
  base = tf.keras.applications.MobileNetV2(
      input_shape=(image_size, image_size, 3),
      include_top=False,
      alpha=alpha,
      weights=resolve_weights(weights))
  if resolve_weights(weights) is None:
    base.trainable = True
    # Keras' default BatchNorm momentum (0.999) needs thousands of steps before the inference
    # statistics of a fresh base are usable; small data sets never get there.
    for layer in base.layers:
      if isinstance(layer, tf.keras.layers.BatchNormalization):
        layer.momentum = 0.9
  else:
    base.trainable = False
  return base


def build_model(num_classes: int,
                image_size: int,
                alpha: float,
                weights: str,
                dropout: float,
                learning_rate: float) -> tf.keras.Model:
  """Transformed images in [-1, 1] -> class logits, compiled with adam."""
  base = build_base(image_size, alpha, weights)
  images = tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)
  # A pretrained base keeps its BatchNorm statistics, also once it is unfrozen for fine-tuning.
  x = base(images, training=None if base.trainable else False)
  x = tf.keras.layers.GlobalAveragePooling2D()(x)
  x = tf.keras.layers.Dropout(dropout)(x)
  logits = tf.keras.layers.Dense(num_classes, name='logits')(x)
  model = tf.keras.Model(images, logits)
  compile_model(model, learning_rate)
  return model


def compile_model(model: tf.keras.Model, learning_rate: float) -> None:
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])


def unfreeze_top_of_base(model: tf.keras.Model, fine_tune_at: int, learning_rate: float) -> None:
  """Second phase of the tutorial: train the base from layer ``fine_tune_at`` on, at a low rate."""
  base = next(layer for layer in model.layers if isinstance(layer, tf.keras.Model))
  base.trainable = True
  for layer in base.layers[:fine_tune_at]:
    layer.trainable = False
  compile_model(model, learning_rate)


def augmentation(rotation_factor: float, seed: Optional[int] = None) -> tf.keras.Sequential:
  """Random horizontal flips and rotations, applied to training batches only."""
  return tf.keras.Sequential([
      tf.keras.layers.RandomFlip('horizontal', seed=seed),
      tf.keras.layers.RandomRotation(rotation_factor, fill_mode='reflect', seed=seed),
  ], name='augmentation')
