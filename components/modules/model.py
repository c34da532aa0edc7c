"""The tutorial's four models (``BUILDERS``, by the names of ``model_variants``) and their training.

All of them take the Transform graph's images in [-1, 1] as input ``features.TRANSFORMED_IMAGE_KEY``
and return Dense(num classes) logits:

1. ``small_cnn``: the small CNN of Keras' image-classification tutorial, on [0, 1] inputs;
2. ``cnn_augmented``: the same with more dropout (the Trainer augments its training batches);
3. ``cnn_augmented_scaled``: model 2 on [-1, 1] inputs;
4. ``mobilenet_v2`` (default): the transfer-learning tutorial's frozen MobileNetV2 base, pooled
   features, dropout, logits.

Models that the tutorial feeds [0, 1] images (its ``Rescaling(1./255)``) get a first layer that maps
[-1, 1] to [0, 1], so training and serving share the one preprocessing path of the Transform graph.
"""
import os
from typing import Callable, Dict, Optional

import tensorflow as tf

from components.modules import features
from components.modules import keras_tracing
from components.modules import model_variants

keras_tracing.skip_autograph_of_keras()

IMAGENET = 'imagenet'
NO_WEIGHTS = 'none'
# How rotated training images fill their corners: mirrored content, not black wedges.
ROTATION_FILL_MODE = 'reflect'


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


def _image_input(image_size: int) -> tf.Tensor:
  return tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)


def build_transfer_model(num_classes: int, image_size: int, alpha: float, weights: str,
                         dropout: float) -> tf.keras.Model:
  """Model 4: MobileNetV2 base, global average pooling, dropout, logits (uncompiled)."""
  base = build_base(image_size, alpha, weights)
  images = _image_input(image_size)
  # A pretrained base keeps its BatchNorm statistics, also once it is unfrozen for fine-tuning.
  x = base(images, training=None if base.trainable else False)
  x = tf.keras.layers.GlobalAveragePooling2D()(x)
  x = tf.keras.layers.Dropout(dropout)(x)
  # Zeros, not Keras' random default: on a frozen base the head is a linear classifier of fixed
  # features (a convex problem, nothing to break symmetry for), and 20 epochs at the recipe's 1e-4
  # do not converge, so a random start moved test accuracy by over a point from run to run
  # (benchmarks/head_seeds.py measures both).
  logits = tf.keras.layers.Dense(num_classes, kernel_initializer='zeros', name='logits')(x)
  return tf.keras.Model(images, logits)


def unit_range_layer() -> tf.keras.layers.Layer:
  """[-1, 1] -> [0, 1]: the tutorial's Rescaling(1./255), after the Transform graph's scaling."""
  return tf.keras.layers.Rescaling(0.5, offset=0.5, name='to_unit_range')


def build_small_cnn(num_classes: int, image_size: int, dropout: float, unit_range_inputs: bool,
                    name: str) -> tf.keras.Model:
  """Models 1-3: the tutorial's small CNN (uncompiled).

  Conv2D(16, 32, 64 filters, 3x3, same, relu) each followed by MaxPool, Flatten, Dense(512, relu),
  Dense(num_classes). ``dropout`` > 0 adds Dropout after the first and after the last pooling layer,
  as the tutorial's second model; ``unit_range_inputs`` first maps the [-1, 1] inputs to [0, 1].
  """
  images = _image_input(image_size)
  x = unit_range_layer()(images) if unit_range_inputs else images
  for block, filters in enumerate((16, 32, 64)):
    x = tf.keras.layers.Conv2D(filters, 3, padding='same', activation='relu',
                               name=f'conv{block + 1}')(x)
    x = tf.keras.layers.MaxPooling2D(name=f'pool{block + 1}')(x)
    if dropout and block in (0, 2):
      x = tf.keras.layers.Dropout(dropout, name=f'dropout{block + 1}')(x)
  x = tf.keras.layers.Flatten()(x)
  x = tf.keras.layers.Dense(512, activation='relu', name='dense')(x)
  logits = tf.keras.layers.Dense(num_classes, name='logits')(x)
  return tf.keras.Model(images, logits, name=name)


# (num_classes, image_size, alpha, weights, dropout) -> an uncompiled model. alpha and weights only
# apply to MobileNetV2; dropout is the head's rate for it and the CNNs' rate for models 2 and 3.
Builder = Callable[[int, int, float, str, float], tf.keras.Model]

BUILDERS: Dict[str, Builder] = {
    model_variants.SMALL_CNN:
        lambda num_classes, image_size, alpha, weights, dropout: build_small_cnn(
            num_classes, image_size, dropout=0.0, unit_range_inputs=True,
            name=model_variants.SMALL_CNN),
    model_variants.CNN_AUGMENTED:
        lambda num_classes, image_size, alpha, weights, dropout: build_small_cnn(
            num_classes, image_size, dropout=dropout, unit_range_inputs=True,
            name=model_variants.CNN_AUGMENTED),
    model_variants.CNN_AUGMENTED_SCALED:
        lambda num_classes, image_size, alpha, weights, dropout: build_small_cnn(
            num_classes, image_size, dropout=dropout, unit_range_inputs=False,
            name=model_variants.CNN_AUGMENTED_SCALED),
    model_variants.MOBILENET_V2: build_transfer_model,
}
assert set(BUILDERS) == set(model_variants.VARIANTS), 'every variant needs exactly one builder'


def build_model(num_classes: int,
                image_size: int,
                alpha: float,
                weights: str,
                dropout: float,
                learning_rate: float,
                model: str) -> tf.keras.Model:
  """Transformed images in [-1, 1] -> class logits of the variant ``model``, compiled with adam."""
  model_variants.get(model)  # a clear error for unknown names
  keras_model = BUILDERS[model](num_classes, image_size, alpha, weights, dropout)
  compile_model(keras_model, learning_rate)
  return keras_model


def compile_model(model: tf.keras.Model, learning_rate: float) -> None:
  """Adam on the logits; the optimizer's slots are made here, before ``fit``: made inside the
  first step instead, they make tf.function trace the whole training step twice."""
  model.compile(
      optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
      metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name='accuracy')])
  model.optimizer.build(model.trainable_variables)


def base_of(model: tf.keras.Model) -> Optional[tf.keras.Model]:
  """The MobileNetV2 base of a transfer model; None for the CNNs."""
  return next((layer for layer in model.layers if isinstance(layer, tf.keras.Model)), None)


def has_frozen_base(model: tf.keras.Model) -> bool:
  base = base_of(model)
  return base is not None and not base.trainable


def unfreeze_top_of_base(model: tf.keras.Model, fine_tune_at: int, learning_rate: float) -> None:
  """Second phase of the tutorial: train the base from layer ``fine_tune_at`` on, at a low rate."""
  base = base_of(model)
  if base is None:
    raise ValueError(f'model {model.name!r} has no pretrained base to fine-tune; fine-tuning '
                     f'applies to {model_variants.MOBILENET_V2} only')
  base.trainable = True
  for layer in base.layers[:fine_tune_at]:
    layer.trainable = False
  compile_model(model, learning_rate)


def augmentation(rotation_factor: float, seed: Optional[int] = None) -> tf.keras.Sequential:
  """Random horizontal flips and rotations, applied to training batches only."""
  return tf.keras.Sequential([
      tf.keras.layers.RandomFlip('horizontal', seed=seed),
      tf.keras.layers.RandomRotation(rotation_factor, fill_mode=ROTATION_FILL_MODE, seed=seed),
  ], name='augmentation')
