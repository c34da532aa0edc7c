"""The tutorial's transfer-learning recipe ("model 4") in plain Keras: the benchmarks' yardstick.

The tutorial as written, for any number of classes: its input path (image_dataset_from_directory
on train/ and validation/; the test split is test/ when the data root has one, else the first
fifth of the validation batches, as the tutorial takes it), a frozen MobileNetV2 at 160 px from the
same weights file as the pipeline's run, per-epoch flips and rotations, Dense(number of classes),
adam at 1e-4 for 20 epochs, batch 32.
Prints one JSON line with the results: test accuracy, balanced accuracy and macro-F1.
"""
import argparse
import json
import os
import time

import bootstrap  # pylint: disable=unused-import
import numpy as np  # pylint: disable=g-bad-import-order
import tensorflow as tf

from components import class_metrics
from components.modules import keras_tracing

# The pipeline's fix of tf_keras' tracing cost, given to the yardstick too: without it, each
# first epoch rewrites Keras' source and the comparison would flatter the pipeline.
keras_tracing.skip_autograph_of_keras()

# The tutorial's settings.
IMAGE_SIZE, BATCH_SIZE, LEARNING_RATE, EPOCHS, DROPOUT = 160, 32, 1e-4, 20, 0.2


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-root', required=True, help='DIR/train, DIR/validation[, DIR/test]')
  parser.add_argument('--weights', required=True)
  parser.add_argument('--alpha', type=float, default=1.0,
                      help='MobileNetV2 width multiplier (default %(default)s)')
  parser.add_argument('--epochs', type=int, default=EPOCHS,
                      help='training epochs (default %(default)s, the tutorial\'s)')
  args = parser.parse_args()

  size = (IMAGE_SIZE, IMAGE_SIZE)
  load = lambda folder, shuffle: tf.keras.utils.image_dataset_from_directory(
      os.path.join(args.data_root, folder), shuffle=shuffle, batch_size=BATCH_SIZE,
      image_size=size)
  train, validation = load('train', True), load('validation', True)
  class_names = train.class_names
  if os.path.isdir(os.path.join(args.data_root, 'test')):
    test = load('test', False)
  else:
    val_batches = tf.data.experimental.cardinality(validation)
    test = validation.take(val_batches // 5)
    validation = validation.skip(val_batches // 5)
  train, validation, test = (d.prefetch(tf.data.AUTOTUNE) for d in (train, validation, test))

  augmentation = tf.keras.Sequential([tf.keras.layers.RandomFlip('horizontal'),
                                      tf.keras.layers.RandomRotation(0.2)])
  base = tf.keras.applications.MobileNetV2(input_shape=size + (3,), include_top=False,
                                           alpha=args.alpha, weights=args.weights)
  base.trainable = False
  inputs = tf.keras.Input(size + (3,))
  x = augmentation(inputs)
  x = tf.keras.applications.mobilenet_v2.preprocess_input(x)
  x = base(x, training=False)
  x = tf.keras.layers.GlobalAveragePooling2D()(x)
  x = tf.keras.layers.Dropout(DROPOUT)(x)
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(len(class_names))(x))
  model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'])
  start = time.time()
  history = model.fit(train, epochs=args.epochs, validation_data=validation, verbose=2)
  labels, predicted = [], []
  for images, batch_labels in test:  # one pass: the test batches are drawn once
    labels.append(batch_labels.numpy())
    predicted.append(np.argmax(model(images, training=False).numpy(), axis=1))
  labels, predicted = np.concatenate(labels), np.concatenate(predicted)
  matrix = np.zeros((len(class_names), len(class_names)))
  np.add.at(matrix, (labels, predicted), 1)
  print(json.dumps({
      'fit_and_test_seconds': time.time() - start,
      'test_accuracy': float(np.mean(labels == predicted)),
      **class_metrics.class_balanced_scores(matrix),
      'test_examples': int(len(labels)),
      'best_val_accuracy': max(history.history['val_accuracy']),
  }))


if __name__ == '__main__':
  main()
