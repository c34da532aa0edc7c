"""A frozen pretrained base's features, computed once by the pipeline, and the head trained on them.

A frozen base computes the same features for an image every time, so a head trained on images
pays the base's forward pass in every epoch (~55 000 passes for 20 epochs of the tutorial's data)
to fit a few thousand weights. Here the pipeline computes them once: FeatureExtractor saves the
base behind the Transform graph (``export_extractor``) as a Model artifact, and TFX's BulkInferrer
runs it over every split with Beam's RunInference (Dataflow scales that pass out), writing the
examples back with ``FEATURES_KEY`` added: the pooled features of the image in a few fixed views
(``augmented_views``: as is, mirrored, turned left and right). Everyone who needs the base's view
of an image reads them there instead of running the base again:

* the Tuner (tuner.py) and the Trainer (trainer.py) train the head, dropout and logits, on them;
  each epoch draws one view per training image, a fixed stand-in for random flips and rotations;
* view 0 is the trained model's embedding (embedding.py's drift baseline and OOD reference);
* the data-quality checks compare images by views 0 and 1.
"""
import math
from typing import Callable, Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor
from tfx_bsl.public import tfxio
from tensorflow_transform.tf_metadata import schema_utils

from components.modules import features
from components.modules import model as model_lib

View = Callable[[tf.Tensor], tf.Tensor]
# BulkInferrer's output column: the base's pooled features of every view, views x width floats.
FEATURES_KEY = 'base_features'
# Images per pass of the base in the extractor: what its activations hold at once, whatever the
# size of RunInference's batch. Measured in the Trainer's former feature pass on the tutorial's
# data (160 px, 4 views): batches of 32 views side by side, peak RSS 1.80 GiB; one view at a time
# in batches of 8, 1.37 GiB, a few seconds slower.
FEATURE_BATCH = 8
# The head trains on arrays in memory: a batch of features costs next to nothing, so large batches
# make an epoch many times faster than the images' batch of 32 (its learning rate is tuned for it).
HEAD_BATCH_SIZE = 256
# Epochs without a better class-balanced eval loss before the head stops (its best epoch is kept).
EARLY_STOPPING_PATIENCE = 10
# (features [N, views, D], labels [N]) of one split.
Features = Tuple[np.ndarray, np.ndarray]


def _mirror(images: tf.Tensor) -> tf.Tensor:
  return tf.reverse(images, axis=[2])


def _rotation(turns: float) -> View:
  """A fixed rotation by ``turns`` of a full turn about the centre, the corners filled by
  reflection, as the per-epoch path's RandomRotation draws it."""
  angle = 2 * math.pi * turns
  cos, sin = math.cos(angle), math.sin(angle)

  def rotate(images: tf.Tensor) -> tf.Tensor:
    height, width = tf.cast(tf.shape(images)[1], tf.float32), tf.cast(tf.shape(images)[2], tf.float32)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.tile(transform[tf.newaxis], [tf.shape(images)[0], 1]),
        output_shape=tf.shape(images)[1:3], fill_value=0.0, interpolation='BILINEAR',
        fill_mode=model_lib.ROTATION_FILL_MODE.upper())

  return rotate


def augmented_views(rotation_factor: float) -> List[View]:
  """The views: the image, its mirror image and, when ``rotation_factor`` > 0, the image turned
  left and its mirror image turned right, each by half the largest random rotation."""
  views = [tf.identity, _mirror]
  if rotation_factor > 0:
    turn_left, turn_right = _rotation(rotation_factor / 2), _rotation(-rotation_factor / 2)
    views += [turn_left, lambda images: turn_right(_mirror(images))]
  return views


def pooled_features_model(image_size: int, alpha: float, weights: str) -> tf.keras.Model:
  """images in [-1, 1] -> the frozen pretrained base's pooled features, the transfer model's
  embedding (model.build_transfer_model has the same layers before its dropout and logits)."""
  base = model_lib.build_base(image_size, alpha, weights)
  images = tf.keras.Input((image_size, image_size, 3), name=features.TRANSFORMED_IMAGE_KEY)
  pooled = tf.keras.layers.GlobalAveragePooling2D()(base(images, training=False))
  return tf.keras.Model(images, pooled, name='pooled_features')


def export_extractor(transform_output_dir: str, export_dir: str, image_size: int, alpha: float,
                     weights: str, rotation_factor: float) -> None:
  """Saves serialized raw tf.Examples -> ``FEATURES_KEY`` [N, views x D] (the Transform graph,
  then the base on every view, ``FEATURE_BATCH`` images at a time) as the SavedModel that
  BulkInferrer runs."""
  tft_output = tft.TFTransformOutput(transform_output_dir)
  extractor = pooled_features_model(image_size, alpha, weights)
  views = augmented_views(rotation_factor)
  served = tf.Module()
  served.model_variables = extractor.variables
  served.tft_layer = tft_output.transform_features_layer()
  image_spec = {features.IMAGE_KEY: tft_output.raw_feature_spec()[features.IMAGE_KEY]}
  width = extractor.output.shape[-1]

  @tf.function(input_signature=[tf.TensorSpec(extractor.input.shape, tf.float32)])
  def pooled(images):
    return extractor(images, training=False)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve(serialized_examples):
    raw_images = tf.io.parse_example(serialized_examples, image_spec)[features.IMAGE_KEY]
    chunks = (tf.shape(raw_images)[0] + FEATURE_BATCH - 1) // FEATURE_BATCH

    def one_chunk(i, outputs):
      chunk = raw_images[i * FEATURE_BATCH:(i + 1) * FEATURE_BATCH]
      images = served.tft_layer({features.IMAGE_KEY: chunk})[features.TRANSFORMED_IMAGE_KEY]
      # One view after the other: the views' passes side by side would hold all their
      # activations at once.
      per_view = [pooled(view(images)) for view in views]
      return i + 1, outputs.write(i, tf.concat(per_view, axis=-1))

    _, outputs = tf.while_loop(
        lambda i, _: i < chunks, one_chunk,
        (0, tf.TensorArray(tf.float32, size=chunks, infer_shape=False,
                           element_shape=[None, len(views) * width])),
        parallel_iterations=1)
    return {FEATURES_KEY: outputs.concat()}

  tf.saved_model.save(served, export_dir, signatures={'serving_default': serve})


def read_features(file_pattern: List[str], data_accessor: DataAccessor,
                  num_views: int) -> Features:
  """The features [N, views, D] and labels [N] of the examples that BulkInferrer wrote."""
  schema = schema_utils.schema_from_feature_spec({
      FEATURES_KEY: tf.io.VarLenFeature(tf.float32),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)})
  dataset = data_accessor.tf_dataset_factory(
      file_pattern, tfxio.TensorFlowDatasetOptions(batch_size=1024, num_epochs=1, shuffle=False),
      schema=schema)
  values, labels = [], []
  for batch in dataset:
    dense = tf.sparse.to_dense(batch[FEATURES_KEY]).numpy()
    values.append(dense.reshape(len(dense), num_views, -1))
    labels.append(batch[features.LABEL_KEY].numpy().reshape(-1))
  if not values:
    raise ValueError(f'no examples with {FEATURES_KEY!r} in {file_pattern}: the split is empty')
  return np.concatenate(values), np.concatenate(labels)


def balancing_weights(labels: np.ndarray, num_classes: int) -> Dict[int, float]:
  """{class id: weight} that makes every class present weigh the same in a loss: n / (k n_c),
  scikit-learn's 'balanced' (1 for every class of a balanced split)."""
  counts = np.bincount(labels, minlength=num_classes)
  present = np.flatnonzero(counts)
  return {int(c): float(len(labels) / (len(present) * counts[c])) for c in present}


def class_weight_of(labels: np.ndarray, num_classes: int, mode: str) -> Optional[Dict[int, float]]:
  """Keras' ``class_weight`` of ``--class-weights`` ``mode``: 'balanced' or 'none' (None)."""
  return balancing_weights(labels, num_classes) if mode == 'balanced' else None


def head_model(width: int, num_classes: int, dropout: float) -> tf.keras.Model:
  """Pooled features -> dropout -> logits: model.build_transfer_model's head (the Tuner's)."""
  inputs = tf.keras.Input((width,), name='pooled_features')
  x = tf.keras.layers.Dropout(dropout)(inputs)
  logits = tf.keras.layers.Dense(num_classes, kernel_initializer='zeros', name='logits')(x)
  return tf.keras.Model(inputs, logits, name='head')


def split_transfer_model(model: tf.keras.Model) -> tf.keras.Model:
  """pooled features -> logits of a transfer model, sharing its head's layers: training it trains
  the model that is saved, with nothing to copy back."""
  pooling = next(layer for layer in model.layers
                 if isinstance(layer, tf.keras.layers.GlobalAveragePooling2D))
  head_input = tf.keras.Input(pooling.output.shape[1:], name='pooled_features')
  x = head_input
  for layer in model.layers[model.layers.index(pooling) + 1:]:
    x = layer(x)
  return tf.keras.Model(head_input, x, name='head')


def fit_head(head: tf.keras.Model, train: Features, eval_: Features, epochs: int,
             learning_rate: float, class_weight: Optional[Dict[int, float]],
             log_dir: Optional[str] = None) -> Tuple[Dict[str, List[float]], int]:
  """Trains ``head`` with adam for at most ``epochs``, until the eval loss (class-balanced when
  ``class_weight`` is) has not improved for EARLY_STOPPING_PATIENCE epochs, and keeps the best
  epoch's weights; returns the per-epoch metrics under the names of ``model.fit``'s history and
  the best epoch (1 for the first).

  Each epoch is one tf.function over arrays in memory, one random view per training image: Keras'
  ``fit`` spent ~0.15 s an epoch on its own machinery against ~0.02 s for the head's arithmetic
  (3 416 flower images, 2 CPUs), and the Tuner trains the head a dozen times.
  """
  num_classes = head.output.shape[-1]
  train_features, train_labels = tf.constant(train[0]), tf.constant(train[1])
  eval_features, eval_labels = tf.constant(eval_[0][:, 0]), tf.constant(eval_[1])

  def example_weights(labels: np.ndarray, weight_of: Optional[Dict[int, float]]) -> tf.Tensor:
    weight_of = weight_of or {}
    return tf.constant([weight_of.get(int(label), 1.0) for label in labels], tf.float32)

  train_weights = example_weights(train[1], class_weight)
  eval_weights = example_weights(
      eval_[1], balancing_weights(eval_[1], num_classes) if class_weight else None)
  optimizer = tf.keras.optimizers.Adam(learning_rate)
  optimizer.build(head.trainable_variables)
  crossentropy = tf.keras.losses.SparseCategoricalCrossentropy(
      from_logits=True, reduction=tf.keras.losses.Reduction.NONE)

  def weighted_loss(labels, logits, weights):
    return tf.reduce_sum(crossentropy(labels, logits) * weights) / tf.reduce_sum(weights)

  # The features are the functions' arguments, not captured: a captured tensor stays alive with
  # the traced graph after this call returns (a copy of the training features per Tuner trial).
  @tf.function
  def train_epoch(train_features, train_labels, train_weights):
    count = tf.shape(train_labels)[0]
    order = tf.random.shuffle(tf.range(count))
    loss_sum, correct = 0.0, 0
    for step in tf.range((count + HEAD_BATCH_SIZE - 1) // HEAD_BATCH_SIZE):
      batch = order[step * HEAD_BATCH_SIZE:(step + 1) * HEAD_BATCH_SIZE]
      views = tf.random.uniform(tf.shape(batch), maxval=tf.shape(train_features)[1],
                                dtype=tf.int32)
      inputs = tf.gather(tf.gather(train_features, batch), views, batch_dims=1)
      labels, weights = tf.gather(train_labels, batch), tf.gather(train_weights, batch)
      with tf.GradientTape() as tape:
        logits = head(inputs, training=True)
        loss = weighted_loss(labels, logits, weights)
      optimizer.apply_gradients(zip(tape.gradient(loss, head.trainable_variables),
                                    head.trainable_variables))
      loss_sum += loss * tf.cast(tf.shape(batch)[0], tf.float32)
      correct += tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1), labels), tf.int32))
    return loss_sum / tf.cast(count, tf.float32), tf.cast(correct, tf.float32) / tf.cast(
        count, tf.float32)

  @tf.function
  def evaluate(eval_features, eval_labels, eval_weights):
    logits = head(eval_features, training=False)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1), eval_labels), tf.float32))
    return weighted_loss(eval_labels, logits, eval_weights), accuracy

  writer = tf.summary.create_file_writer(log_dir) if log_dir else None
  history = {'loss': [], 'accuracy': [], 'val_loss': [], 'val_accuracy': []}
  best_loss, best_epoch, best_weights = float('inf'), 0, head.get_weights()
  for epoch in range(epochs):
    for name, value in zip(history, (*train_epoch(train_features, train_labels, train_weights),
                                     *evaluate(eval_features, eval_labels, eval_weights))):
      history[name].append(float(value))
    if writer:
      with writer.as_default(step=epoch):
        for name, values in history.items():
          tf.summary.scalar(name, values[-1])
    if history['val_loss'][-1] < best_loss:
      best_loss, best_epoch, best_weights = history['val_loss'][-1], epoch, head.get_weights()
    elif epoch - best_epoch >= EARLY_STOPPING_PATIENCE:
      break
  head.set_weights(best_weights)
  logging.info('Head: %d epochs, the best (%d) kept: eval loss %.4f, eval accuracy %.4f',
               len(history['loss']), best_epoch + 1, best_loss, history['val_accuracy'][best_epoch])
  return history, best_epoch + 1
