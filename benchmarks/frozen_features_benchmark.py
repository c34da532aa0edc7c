"""Benchmark: the Trainer with a frozen base, head on features computed once vs the per-epoch path.

Trainer-level only (not the pipeline): writes the real cats_and_dogs_filtered images as tf.Examples
split as ImageExampleGen splits them (train/ -> train; validation/ -> eval and test by the hash of
the path), makes the Transform graph of the project's preprocessing_fn, then runs the Trainer's
``run_fn`` in a fresh process once per path, one after the other, with the alpha-1.0 weights from
../shared/weights at 160 px: (1) the default, features computed once and the head trained on them;
(2) ``per_epoch_augmentation``, the tutorial's augmented images in every epoch. For each it records
the wall time of ``run_fn`` (model build, training, SavedModel export), the time of each epoch (from
the arrival of Keras' 'Epoch k/N' lines), peak RSS, the last epoch's eval accuracy and the saved
model's accuracy on the test split through ``serving_image_bytes``. Writes
benchmarks/results/frozen_features_benchmark.{json,md}.

    python -m benchmarks.frozen_features_benchmark [--epochs 20] [--per-epoch-epochs 20]

With ``--per-epoch-epochs`` below ``--epochs`` the per-epoch path runs that many epochs and its
time is extrapolated to ``--epochs`` from its epochs after the first (the first also decodes and
caches the images); its accuracies are then those after the shorter run.
"""
import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import components  # pylint: disable=unused-import  # first: sets the Keras switch before TensorFlow
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

SHARED = os.environ.get('CATS_DOGS_SHARED', os.path.join(os.path.dirname(REPO), 'shared'))
DATA = os.path.join(SHARED, 'datasets', 'cats_and_dogs_filtered')
WEIGHTS = os.path.join(SHARED, 'weights', 'mobilenet_v2_1.0_160_no_top_partly_dogs_finetuned.h5')
RESULTS = os.path.join(REPO, 'benchmarks', 'results')
CLASS_NAMES = ['cats', 'dogs']
IMAGE_SIZE = 160
PATHS = {'features': {}, 'per_epoch': {'per_epoch_augmentation': True}}


def write_examples(workdir: str) -> Dict[str, List[str]]:
  """tf.Example files of the train, eval and test splits; the test split's image paths."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import splits  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  config = {'train_folder': 'train', 'test_fraction': 0.2}
  writers = {split: tf.io.TFRecordWriter(os.path.join(workdir, f'{split}.tfrecord'))
             for split in ('train', 'eval', 'test')}
  test_images = []
  for folder in ('train', 'validation'):
    for label, name in enumerate(CLASS_NAMES):
      for file_name in sorted(os.listdir(os.path.join(DATA, folder, name))):
        relative = f'{folder}/{name}/{file_name}'
        split = splits.assign_split(relative, folder, config)
        with open(os.path.join(DATA, relative), 'rb') as f:
          data = f.read()
        if split == 'test':
          test_images.append((os.path.join(DATA, relative), label))
        writers[split].write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            features.LABEL_NAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[name.encode()])),
        })).SerializeToString())
  for writer in writers.values():
    writer.close()
  with open(os.path.join(workdir, 'test_images.json'), 'w') as f:
    json.dump(test_images, f)


def write_transform_graph(workdir: str) -> None:
  """The Transform graph of the project's preprocessing_fn at 160 px, as the Transform component
  writes it (the function has no analyzers: one example is enough)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  import tensorflow_transform.beam as tft_beam  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # pylint: disable=g-import-not-at-top
  from components.modules import features, preprocessing  # pylint: disable=g-import-not-at-top
  with open(os.path.join(DATA, 'train', 'cats', 'cat.0.jpg'), 'rb') as f:
    raw = [{features.IMAGE_KEY: [f.read()], features.LABEL_KEY: [0],
            features.LABEL_NAME_KEY: [b'cats']}]
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
      features.LABEL_NAME_KEY: tf.io.FixedLenFeature([1], tf.string),
  }))
  out_dir = os.path.join(workdir, 'transform')
  from components.modules import image_budget  # pylint: disable=g-import-not-at-top
  from pipeline.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  preprocessing_fn = functools.partial(preprocessing.preprocessing_fn, custom_config={
      'image_size': IMAGE_SIZE, **image_budget.as_settings(image_budget_of(None))})
  with tft_beam.Context(temp_dir=os.path.join(workdir, 'tft_tmp'), force_tf_compat_v1=False):
    transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))


def run_trainer(workdir: str, path: str, epochs: int) -> None:
  """Child process: run_fn on the written splits; prints one JSON line of results."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs  # pylint: disable=g-import-not-at-top
  from tfx.components.util import tfxio_utils  # pylint: disable=g-import-not-at-top
  from tfx.proto import example_gen_pb2  # pylint: disable=g-import-not-at-top
  from components.modules import features, trainer  # pylint: disable=g-import-not-at-top

  def tf_dataset_factory(file_pattern, options, schema):
    return tfxio_utils.make_tfxio(file_pattern=file_pattern, telemetry_descriptors=['benchmark'],
                                  payload_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
                                  schema=schema).TensorFlowDataset(options)

  out = os.path.join(workdir, path)
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  # The tutorial preset's Trainer settings, as the pipeline hands them to run_fn.
  config = configs.PipelineConfig.for_dataset(
      'cats_and_dogs_filtered', data_root=DATA, pipeline_root=workdir,
      serving_dir=os.path.join(workdir, 'serving'), weights=WEIGHTS, epochs=epochs,
      **PATHS[path]).trainer_custom_config(CLASS_NAMES)
  fn_args = FnArgs(
      train_files=[os.path.join(workdir, 'train.tfrecord')],
      eval_files=[os.path.join(workdir, 'eval.tfrecord')],
      transform_output=os.path.join(workdir, 'transform'),
      serving_model_dir=os.path.join(out, 'serving'), model_run_dir=os.path.join(out, 'run'),
      data_accessor=DataAccessor(tf_dataset_factory=tf_dataset_factory,
                                 record_batch_factory=None,
                                 data_view_decode_fn=None),
      custom_config=config)
  start = time.time()
  trainer.run_fn(fn_args)
  run_fn_seconds = time.time() - start
  with open(os.path.join(out, 'run', 'history.json')) as f:
    history = json.load(f)['history']
  with open(os.path.join(workdir, 'test_images.json')) as f:
    test_images = json.load(f)
  serve = tf.saved_model.load(fn_args.serving_model_dir).signatures[features.IMAGE_BYTES_SIGNATURE]
  correct = 0
  for i in range(0, len(test_images), 32):
    batch = test_images[i:i + 32]
    encoded = [open(p, 'rb').read() for p, _ in batch]  # pylint: disable=consider-using-with
    class_ids = serve(image_bytes=tf.constant(encoded))[features.CLASS_IDS_OUTPUT].numpy()
    correct += int(np.sum(class_ids == np.array([label for _, label in batch])))
  print('RESULT ' + json.dumps({
      'run_fn_seconds': run_fn_seconds,
      'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      'epochs': len(history['loss']),
      'eval_accuracy_last_epoch': history['val_accuracy'][-1],
      'test_accuracy_serving_image_bytes': correct / len(test_images),
      'test_examples': len(test_images),
  }), flush=True)


def measure(workdir: str, path: str, epochs: int) -> Dict[str, object]:
  """Runs one path in a fresh process; its results plus per-epoch times and the load average."""
  command = [sys.executable, os.path.abspath(__file__), '--child', path, '--workdir', workdir,
             '--epochs', str(epochs)]
  env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED='1')
  load_before = os.getloadavg()
  process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
  epoch_starts, features_done, result = [], None, None
  for line in process.stdout:
    sys.stdout.write(f'[{path}] {line}')
    if line.startswith('Epoch '):
      epoch_starts.append(time.time())
    elif line.startswith('Pooled features'):
      features_done = line.strip()
    elif line.startswith('RESULT '):
      result = json.loads(line[len('RESULT '):])
  if process.wait() != 0 or result is None:
    raise SystemExit(f'the {path} run failed (exit status {process.returncode})')
  epoch_seconds = [b - a for a, b in zip(epoch_starts, epoch_starts[1:])]
  result.update(load_average_before=load_before, load_average_after=os.getloadavg(),
                epoch_seconds_between_starts=epoch_seconds, features_line=features_done)
  return result


def extrapolate(result: Dict[str, object], epochs: int) -> None:
  """run_fn time at ``epochs`` from a shorter run: its later epochs' mean time for the missing ones."""
  later = result['epoch_seconds_between_starts'][1:] or result['epoch_seconds_between_starts']
  missing = epochs - result['epochs']
  result['run_fn_seconds_extrapolated'] = (
      result['run_fn_seconds'] + missing * sum(later) / len(later) if missing > 0 else None)


def write_results(results: Dict[str, Dict[str, object]], epochs: int) -> None:
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, 'frozen_features_benchmark.json'), 'w') as f:
    json.dump({'epochs': epochs, 'weights': os.path.basename(WEIGHTS), 'results': results}, f,
              indent=1)
  rows = ['| path | epochs run | run_fn s | run_fn s at %d epochs | eval acc (last epoch) | '
          'test acc (serving_image_bytes) | peak RSS GiB | load avg before -> after |' % epochs,
          '|---|---|---|---|---|---|---|---|']
  for path, r in results.items():
    at_epochs = r.get('run_fn_seconds_extrapolated') or r['run_fn_seconds']
    rows.append(f"| {path} | {r['epochs']} | {r['run_fn_seconds']:.0f} | {at_epochs:.0f}"
                f"{' (extrapolated)' if r.get('run_fn_seconds_extrapolated') else ''} | "
                f"{r['eval_accuracy_last_epoch']:.4f} | "
                f"{r['test_accuracy_serving_image_bytes']:.4f} ({r['test_examples']}) | "
                f"{r['peak_rss_bytes'] / 2**30:.2f} | "
                f"{r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f} |")
  with open(os.path.join(RESULTS, 'frozen_features_benchmark.md'), 'w') as f:
    f.write('# Trainer: head on features computed once vs per-epoch augmented images\n\n'
            f'`python benchmarks/frozen_features_benchmark.py`, weights '
            f'`{os.path.basename(WEIGHTS)}` (alpha 1.0, {IMAGE_SIZE} px), batch 32, adam 1e-4, '
            f'{os.cpu_count()} CPUs.\n\n' + '\n'.join(rows) + '\n\n'
            + ''.join(f"- {path}: {r['features_line'] or 'no feature pass'}; seconds between "
                      f"epoch starts: {', '.join(f'{s:.1f}' for s in r['epoch_seconds_between_starts'])}\n"
                      for path, r in results.items()))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--per-epoch-epochs', type=int, help='default: --epochs')
  parser.add_argument('--child', choices=sorted(PATHS), help=argparse.SUPPRESS)
  parser.add_argument('--workdir', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return run_trainer(args.workdir, args.child, args.epochs)
  if not (os.path.isdir(DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: needs {DATA} and {WEIGHTS}')
    return None
  with tempfile.TemporaryDirectory(prefix='frozen_features_benchmark_') as workdir:
    write_examples(workdir)
    write_transform_graph(workdir)
    results = {'features': measure(workdir, 'features', args.epochs)}
    per_epoch_epochs = args.per_epoch_epochs or args.epochs
    results['per_epoch'] = measure(workdir, 'per_epoch', per_epoch_epochs)
    extrapolate(results['per_epoch'], args.epochs)
  write_results(results, args.epochs)
  print(json.dumps(results, indent=1))
  return None


if __name__ == '__main__':
  main()
