"""Benchmark: the SavedModel against its TFLite copies on the real data: accuracy, size, latency.

The pipeline's recipe on the real images (MobileNetV2 alpha 1.0, 160 px, the no_top weights of
../shared/weights, frozen): its head (dropout 0.2, Dense(2)) is trained with Keras for 20 epochs
on the pooled features of the 2000 training images and their mirror images (the features cached
by benchmarks/blessing_gate.py), then set into the pipeline's own model
(components/modules/model.py). That model is saved as a plain SavedModel as the Trainer saves it
(``signatures.save_served``; preprocessed images in, so no Transform graph) and converted as the
Trainer converts it (components/modules/tflite_export.py: float16), and also with dynamic-range
quantisation and without quantisation (float32) for comparison. All are scored on the pipeline's
test split (224 validation images), each image through the pipeline's preprocessing, and timed
per image (batch 1) with 2 threads: TensorFlow's intra-op pool for the SavedModel, the
interpreter's threads for TFLite; the models take turns in rounds, so that other work on the
shared machine slows them alike. Writes benchmarks/results/tflite_benchmark.{json,md}.

    python -m benchmarks.tflite_benchmark
"""
import os
import tempfile
import time
from typing import Callable, Dict

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks.blessing_gate import ALPHA, IMAGE_SIZE, pooled_features, test_split_files
from benchmarks.common import WEIGHTS
from components.modules import model as model_lib
from components.modules import model_variants
from components.modules import preprocessing
from components.modules import signatures
from components.modules import tflite_export

THREADS = 2
WARM_UP, ROUNDS, CALLS_PER_ROUND = 10, 10, 20


def trained_model() -> tf.keras.Model:
  """The pipeline's MobileNetV2 with its head trained on the cached pooled features."""
  data = pooled_features()
  tf.keras.utils.set_random_seed(0)
  model = model_lib.build_model(num_classes=2, image_size=IMAGE_SIZE, alpha=ALPHA, weights=WEIGHTS,
                                dropout=0.2, learning_rate=1e-4, model=model_variants.MOBILENET_V2)
  head = tf.keras.Sequential([tf.keras.layers.Dropout(0.2), tf.keras.layers.Dense(2)])
  head.compile(optimizer=tf.keras.optimizers.Adam(1e-4),
               loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  features = np.concatenate([data['train'], data['train_flipped']])
  labels = np.concatenate([data['train_labels'], data['train_labels']])
  head.fit(features, labels, epochs=20, batch_size=32, verbose=0, shuffle=True)
  model.get_layer('logits').set_weights(head.layers[-1].get_weights())
  return model


def latencies_ms(calls: Dict[str, Callable[[np.ndarray], np.ndarray]],
                 image: np.ndarray) -> Dict[str, Dict[str, float]]:
  """Per model: the median and the fastest of ROUNDS medians of CALLS_PER_ROUND calls on one
  image, the models taking turns round by round, so that other work on the machine slows them all
  alike; after WARM_UP calls each."""
  for call in calls.values():
    for _ in range(WARM_UP):
      call(image)
  medians = {name: [] for name in calls}
  for _ in range(ROUNDS):
    for name, call in calls.items():
      times = []
      for _ in range(CALLS_PER_ROUND):
        start = time.perf_counter()
        call(image)
        times.append(time.perf_counter() - start)
      medians[name].append(1000 * float(np.median(times)))
  return {name: {'ms_per_image': float(np.median(m)), 'fastest_round_ms': float(np.min(m))}
          for name, m in medians.items()}


def folder_bytes(folder: str) -> int:
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(folder) for name in names)


def main() -> int:
  tf.config.threading.set_intra_op_parallelism_threads(THREADS)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  files = test_split_files()
  labels = np.array([label for _, label in files])
  images = []
  for start in range(0, len(files), 32):
    batch = [open(path, 'rb').read() for path, _ in files[start:start + 32]]
    images.append(preprocessing.preprocess_images(tf.constant(batch), IMAGE_SIZE).numpy())
  images = np.concatenate(images)
  model = trained_model()
  results: Dict[str, Dict[str, float]] = {}
  calls = {}
  with tempfile.TemporaryDirectory() as folder:
    @tf.function(input_signature=[
        tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name='images')])
    def probabilities(images):
      return {'probabilities': tf.nn.softmax(model(images, training=False))}

    signatures.save_served(model, folder, {'serving_default': probabilities.get_concrete_function()})
    serve = tf.saved_model.load(folder).signatures['serving_default']
    input_name = list(serve.structured_input_signature[1])[0]

    def saved_model_call(batch):
      return next(iter(serve(**{input_name: tf.constant(batch)}).values())).numpy()

    saved_model_classes = np.concatenate([
        saved_model_call(images[i:i + 32]) for i in range(0, len(images), 32)]).argmax(-1)
    results['saved_model'] = {'accuracy': float(np.mean(saved_model_classes == labels)),
                              'bytes': folder_bytes(folder)}
    calls['saved_model'] = saved_model_call
    for kind in ('float16', 'dynamic_range', 'float32'):
      content = tflite_export.convert(model, IMAGE_SIZE, kind)
      tflite = tflite_export.TFLiteClassifier(content, num_threads=THREADS)
      classes = np.concatenate([tflite.probabilities(images[i:i + 1])
                                for i in range(len(images))]).argmax(-1)
      results[f'tflite_{kind}'] = {
          'accuracy': float(np.mean(classes == labels)), 'bytes': len(content),
          'agreement_with_saved_model': float(np.mean(classes == saved_model_classes))}
      calls[f'tflite_{kind}'] = tflite.probabilities
    for name, timing in latencies_ms(calls, images[:1]).items():
      results[name].update(timing)
  summary = {'test_images': len(labels), 'threads': THREADS, 'image_size': IMAGE_SIZE,
             'alpha': ALPHA, 'weights': os.path.basename(WEIGHTS), 'models': results,
             'load_average': os.getloadavg()[0]}
  rows = '\n'.join(f"| {name} | {r['accuracy']:.4f} | {r['bytes'] / 2**20:.2f} MiB | "
                   f"{r['ms_per_image']:.1f} ms ({r['fastest_round_ms']:.1f}) |" for name, r in results.items())
  common.write_results('tflite_benchmark', summary, (
      f"# SavedModel vs TFLite on the real test split ({len(labels)} images)\n\n"
      f'MobileNetV2 alpha {ALPHA}, {IMAGE_SIZE} px, head trained on the real features; '
      f'{THREADS} threads, batch 1; latency: median (and fastest) of {ROUNDS} rounds of '
      f'{CALLS_PER_ROUND} calls each, the models taking turns; load average '
      f"{summary['load_average']:.1f} at the end.\n\n"
      '| model | test accuracy | size | latency per image |\n|---|---|---|---|\n' + rows + '\n'))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
