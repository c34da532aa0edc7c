"""The tutorial's transfer-learning recipe ("model 4") in plain Keras: the benchmark's yardstick.

Same data, same backbone file, same epochs and batch size as the pipeline run; the tutorial's own
input path (image_dataset_from_directory, test = the first fifth of the validation batches) and
per-epoch augmentation.
Prints one JSON line with the results.
"""
import argparse
import json
import os
import time

from pipeline import configs  # first: its package sets the Keras switch before TensorFlow loads
import tensorflow as tf  # pylint: disable=g-bad-import-order

from components.modules import keras_tracing

# The pipeline's fix of tf_keras' tracing cost, given to the yardstick too: without it, each
# first epoch rewrites Keras' source and the comparison would flatter the pipeline.
keras_tracing.skip_autograph_of_keras()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data-root', required=True)
  parser.add_argument('--weights', required=True)
  parser.add_argument('--alpha', type=float, default=configs.default('alpha'),
                      help='MobileNetV2 width multiplier (default %(default)s)')
  parser.add_argument('--epochs', type=int, default=configs.default('epochs'),
                      help='training epochs (default %(default)s)')
  args = parser.parse_args()

  size = (configs.default('image_size'),) * 2
  batch = configs.default('batch_size')
  train = tf.keras.utils.image_dataset_from_directory(
      os.path.join(args.data_root, 'train'), shuffle=True, batch_size=batch, image_size=size)
  validation = tf.keras.utils.image_dataset_from_directory(
      os.path.join(args.data_root, 'validation'), shuffle=True, batch_size=batch, image_size=size)
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
  x = tf.keras.layers.Dropout(configs.default('dropout'))(x)
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(2)(x))
  model.compile(optimizer=tf.keras.optimizers.Adam(configs.default('learning_rate')),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=['accuracy'])
  start = time.time()
  history = model.fit(train, epochs=args.epochs, validation_data=validation, verbose=2)
  _, test_accuracy = model.evaluate(test, verbose=0)
  print(json.dumps({
      'fit_and_test_seconds': time.time() - start,
      'test_accuracy': test_accuracy,
      'test_examples': int(sum(int(tf.shape(y)[0]) for _, y in test)),
      'best_val_accuracy': max(history.history['val_accuracy']),
  }))


if __name__ == '__main__':
  main()
