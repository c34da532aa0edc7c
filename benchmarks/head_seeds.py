"""Benchmark: how much the test accuracy of the frozen base's head moves with the random seed alone.

The test split has 224 images, so one image is 0.45 points: whether one pipeline run lands above or
below 0.98 says little. This computes the pooled features of the real cats_and_dogs_filtered splits
once, exactly as the Trainer does (``frozen_features``: the ExampleGen's split, the project's
Transform graph, the alpha-1.0 weights from ../shared/weights, the four training views), then trains
the head ``--seeds`` times per setting, each from its own seed, and measures each head on the test
split's features (the served model's logits, to the tolerance of
tests/test_frozen_features.py). Settings, as ``learning_rate:epochs:views:init`` (views ``all`` or
``one``; the logits layer's initial kernel ``zeros``, the model's, or ``glorot``, Keras' default):
by default the recipe's (adam 1e-4, 20 epochs, four views) with each initialisation.
Writes benchmarks/results/head_seeds.{json,md}.

    python -m benchmarks.head_seeds [--seeds 10] [--settings 1e-4:20:all:zeros,1e-4:40:one:zeros]
"""
import argparse
import json
import os
import tempfile
from typing import Dict, List, Tuple

from benchmarks import frozen_features_benchmark as trainer_benchmark
from benchmarks.pipeline_benchmark import RESULTS, WEIGHTS

RECIPE = '1e-4:20:all:zeros'
DEFAULT_SETTINGS = f'{RECIPE},1e-4:20:all:glorot'
BATCH_SIZE = 32


def split_features(workdir: str) -> Dict[str, Tuple['np.ndarray', 'np.ndarray']]:
  """{'train': ([N, 4, D], [N]), 'eval': ([M, 1, D], [M]), 'test': ...}: one pass of the base."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tfx.components.trainer.fn_args_utils import DataAccessor  # pylint: disable=g-import-not-at-top
  from tfx.components.util import tfxio_utils  # pylint: disable=g-import-not-at-top
  from tfx.proto import example_gen_pb2  # pylint: disable=g-import-not-at-top
  from components.modules import frozen_features, trainer  # pylint: disable=g-import-not-at-top

  def tf_dataset_factory(file_pattern, options, schema):
    return tfxio_utils.make_tfxio(file_pattern=file_pattern, telemetry_descriptors=['benchmark'],
                                  payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
                                  schema=schema).TensorFlowDataset(options)

  accessor = DataAccessor(tf_dataset_factory=tf_dataset_factory,
                          record_batch_factory=None, data_view_decode_fn=None)
  tft_output = tft.TFTransformOutput(os.path.join(workdir, 'transform'))
  extractor, _ = frozen_features.split_transfer_model(build_model(1e-4))
  features = {}
  for split in ('train', 'eval', 'test'):
    images = trainer.make_dataset([os.path.join(workdir, f'{split}.tfrecord')], accessor,
                                  tft_output, BATCH_SIZE, training=False, cache=False)
    views = frozen_features.augmented_views(0.1) if split == 'train' else [tf.identity]
    features[split] = frozen_features.extract_features(extractor, images, views)
  return features


def build_model(learning_rate: float):
  from components.modules import model as model_lib  # pylint: disable=g-import-not-at-top
  return model_lib.build_model(num_classes=2, image_size=trainer_benchmark.IMAGE_SIZE, alpha=1.0,
                               weights=WEIGHTS, dropout=0.2, learning_rate=learning_rate,
                               model='mobilenet_v2')


def test_accuracies(features, setting: str, seeds: int) -> List[float]:
  """The test accuracy of a head trained from each of ``seeds`` seeds with ``setting``."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import frozen_features  # pylint: disable=g-import-not-at-top
  learning_rate, epochs, views, init = setting.split(':')
  train_features, train_labels = features['train']
  if views == 'one':
    train_features = train_features[:, :1]
  test_features, test_labels = features['test']
  accuracies = []
  for seed in range(seeds):
    tf.keras.utils.set_random_seed(seed)
    _, head = frozen_features.split_transfer_model(build_model(float(learning_rate)))
    if init == 'glorot':
      logits = head.get_layer('logits')
      logits.set_weights([tf.keras.initializers.GlorotUniform(seed)(logits.kernel.shape),
                          np.zeros(logits.bias.shape)])
    frozen_features.fit_head(head, (train_features, train_labels), features['eval'], int(epochs),
                             BATCH_SIZE, float(learning_rate), callbacks=[])
    predicted = np.argmax(head.predict(test_features[:, 0], verbose=0), axis=1)
    accuracies.append(float(np.mean(predicted == test_labels)))
  return accuracies


def write_results(results: Dict[str, List[float]], test_images: int) -> None:
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, 'head_seeds.json'), 'w') as f:
    json.dump({'weights': os.path.basename(WEIGHTS), 'test_images': test_images,
               'test_accuracy_per_seed': results}, f, indent=1)
  rows = ['| learning rate : epochs : views : initial logits kernel | seeds | mean | min | max | runs >= 0.98 |',
          '|---|---|---|---|---|---|']
  for setting, accuracies in results.items():
    rows.append(f'| {setting}{" (the Trainer uses)" if setting == RECIPE else ""} | {len(accuracies)} | '
                f'{sum(accuracies) / len(accuracies):.4f} | {min(accuracies):.4f} | '
                f'{max(accuracies):.4f} | {sum(a >= 0.98 for a in accuracies)} |')
  with open(os.path.join(RESULTS, 'head_seeds.md'), 'w') as f:
    f.write('# Test accuracy of the frozen base\'s head, seed by seed\n\n'
            f'`python -m benchmarks.head_seeds`: features of the real splits computed once '
            f'(`{os.path.basename(WEIGHTS)}`, {trainer_benchmark.IMAGE_SIZE} px), the head trained '
            f'from each seed, measured on the {test_images} test images (one image = '
            f'{100 / test_images:.2f} points).\n\n' + '\n'.join(rows) + '\n')


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--seeds', type=int, default=10)
  parser.add_argument('--settings', default=DEFAULT_SETTINGS,
                      help='comma-separated learning_rate:epochs:views:init (default %(default)s)')
  args = parser.parse_args(argv)
  if not (os.path.isdir(trainer_benchmark.DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: needs {trainer_benchmark.DATA} and {WEIGHTS}')
    return
  with tempfile.TemporaryDirectory(prefix='head_seeds_') as workdir:
    trainer_benchmark.write_examples(workdir)
    trainer_benchmark.write_transform_graph(workdir)
    features = split_features(workdir)
  results = {setting: test_accuracies(features, setting, args.seeds)
             for setting in args.settings.split(',')}
  write_results(results, len(features['test'][1]))
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  main()
