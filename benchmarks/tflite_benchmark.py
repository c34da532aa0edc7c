"""Benchmark: the SavedModel against its TFLite copies on the real data: accuracy, size, latency.

The pipeline's recipe on the real images (MobileNetV2 alpha 1.0, 160 px, the no_top weights of
../shared/weights, frozen): its head (dropout 0.2, Dense(2)) is trained with Keras for 20 epochs
on the pooled features of the 2000 training images and their mirror images (the features cached
by benchmarks/blessing_gate.py), then set into the pipeline's own model
(components/modules/model.py). That model is saved as a SavedModel and converted as the Trainer
converts it (components/modules/tflite_export.py: float16), and also with dynamic-range
quantisation and without quantisation (float32) for comparison. All are scored on the pipeline's test split (224 validation images), each image
through the pipeline's preprocessing, and timed per image (batch 1, median of 100 calls after 10
warm-up calls) with 2 threads: TensorFlow's intra-op pool for the SavedModel, the interpreter's
threads for TFLite. Writes benchmarks/results/tflite_benchmark.{json,md}.

    python -m benchmarks.tflite_benchmark
"""
import json
import os
import tempfile
import time
from typing import Callable, Dict

import components  # pylint: disable=unused-import  # first: sets the Keras switch before TensorFlow
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

# pylint: disable=wrong-import-position
import numpy as np
import tensorflow as tf

from benchmarks.blessing_gate import ALPHA, IMAGE_SIZE, pooled_features, test_split_files
from benchmarks.pipeline_benchmark import RESULTS, WEIGHTS
from components.modules import model as model_lib
from components.modules import model_variants
from components.modules import preprocessing
from components.modules import tflite_export

THREADS = 2
TIMED_CALLS = 100


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


def median_ms(call: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> float:
  for _ in range(10):
    call(image)
  times = []
  for _ in range(TIMED_CALLS):
    start = time.perf_counter()
    call(image)
    times.append(time.perf_counter() - start)
  return 1000 * float(np.median(times))


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
  with tempfile.TemporaryDirectory() as folder:
    model.save(folder, save_format='tf')
    saved = tf.saved_model.load(folder)
    serve = saved.signatures['serving_default']
    input_name = list(serve.structured_input_signature[1])[0]

    def saved_model_call(batch):
      return next(iter(serve(**{input_name: tf.constant(batch)}).values())).numpy()

    predicted = np.concatenate([saved_model_call(images[i:i + 32]) for i in range(0, len(images), 32)])
    results['saved_model'] = {'accuracy': float(np.mean(predicted.argmax(-1) == labels)),
                              'bytes': folder_bytes(folder),
                              'ms_per_image': median_ms(saved_model_call, images[:1])}
  for kind in ('float16', 'dynamic_range', 'float32'):
    content = tflite_export.convert(model, IMAGE_SIZE, kind)
    tflite = tflite_export.TFLiteClassifier(content, num_threads=THREADS)
    predicted = np.concatenate([tflite.probabilities(images[i:i + 1]) for i in range(len(images))])
    results[f'tflite_{kind}'] = {
        'accuracy': float(np.mean(predicted.argmax(-1) == labels)), 'bytes': len(content),
        'ms_per_image': median_ms(tflite.probabilities, images[:1]),
        'agreement_with_saved_model': None}
    results[f'tflite_{kind}']['agreement_with_saved_model'] = float(np.mean(
        predicted.argmax(-1) == np.concatenate([
            saved_model_call(images[i:i + 32]) for i in range(0, len(images), 32)]).argmax(-1)))
  summary = {'test_images': len(labels), 'threads': THREADS, 'image_size': IMAGE_SIZE,
             'alpha': ALPHA, 'weights': os.path.basename(WEIGHTS), 'models': results,
             'load_average': os.getloadavg()[0]}
  with open(os.path.join(RESULTS, 'tflite_benchmark.json'), 'w') as f:
    json.dump(summary, f, indent=1)
  rows = '\n'.join(f"| {name} | {r['accuracy']:.4f} | {r['bytes'] / 2**20:.2f} MiB | "
                   f"{r['ms_per_image']:.1f} ms |" for name, r in results.items())
  with open(os.path.join(RESULTS, 'tflite_benchmark.md'), 'w') as f:
    f.write(f"# SavedModel vs TFLite on the real test split ({len(labels)} images)\n\n"
            f'MobileNetV2 alpha {ALPHA}, {IMAGE_SIZE} px, head trained on the real features; '
            f'{THREADS} threads, batch 1, median of {TIMED_CALLS} calls; load average '
            f"{summary['load_average']:.1f} at the end.\n\n"
            '| model | test accuracy | size | latency per image |\n|---|---|---|---|\n'
            + rows + '\n')
  print(json.dumps(summary, indent=1))
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
