"""Benchmark: the served model's memory on a request that carries a decompression bomb.

Saves a small model as the Trainer saves it (MobileNetV2 alpha 0.35 from ../shared/weights, 160
px, a fixed random head, the three serving signatures, the Transform graph of the project's
preprocessing_fn with PipelineConfig's image budget) and the same model through a Transform graph
without the budget check (preprocessing as it was before it), then, each in a fresh process:

* sends every bomb (PNG, JPEG and GIF; grey, RGB/RGBA/CMYK, animated) to ``serving_image_bytes``
  alone, and at index 20 of a batch of 32 real photos: the peak RSS above the loaded, warmed
  model during the call (the kernel's high-water mark, reset just before it), the time, and the
  error the request got;
* sends three of them alone to the model without the check: what the budget saves;
* sends the same 32 photos to both models through all three signatures: the largest difference
  of their probabilities (and OOD scores), and the time per image of each and of the header
  check alone, in interleaved rounds.

Writes benchmarks/results/image_bombs.{json,md}.

    python -m benchmarks.image_bombs
"""
import argparse
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import common
from benchmarks.common import DATA, REPO, SHARED
from tests import bombs

WEIGHTS = os.path.join(SHARED, 'weights', 'mobilenet_v2_0.35_no_top_imagenet.h5')
IMAGE_SIZE = 160
CLASSES = ['cats', 'dogs']
BATCH = 32
BOMB_INDEX = 20
ROUNDS = 15
# The signature each case goes to; serving_image_bytes unless named.
CASES = {
    'png grey 20000x20000': lambda: bombs.png(20000, 20000, bombs.GREY),
    'png rgba 20000x20000': lambda: bombs.png(20000, 20000, bombs.RGBA),
    'png rgba 65535x65535': lambda: bombs.png(65535, 65535, bombs.RGBA),
    'jpeg grey 23170x23170 (header only)': lambda: bombs.jpeg_sized(23170, 23170, 'L'),
    'jpeg grey 20000x20000': lambda: _pillow_jpeg(20000, 20000),
    'jpeg rgb 20000x20000 (header only)': lambda: bombs.jpeg_sized(20000, 20000, 'RGB'),
    'jpeg cmyk 20000x20000 (header only)': lambda: bombs.jpeg_sized(20000, 20000, 'CMYK'),
    'gif 20000x20000': lambda: _pillow_gif(20000, 20000),
    'gif transparent 20000x20000': lambda: _pillow_gif(20000, 20000, transparency=0),
    'gif 40 frames of 5000x5000': lambda: _repeated_frames(5000, 5000, 40),
}
UNCHECKED_CASES = ('png grey 20000x20000', 'jpeg grey 23170x23170 (header only)',
                   'gif 40 frames of 5000x5000')


def _pillow_jpeg(width: int, height: int) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return bombs.encode(Image.new('L', (width, height), 128), 'JPEG', quality=50)


def _pillow_gif(width: int, height: int, **options) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return bombs.encode(Image.new('P', (width, height), 0), 'GIF', **options)


def _repeated_frames(width: int, height: int, frames: int) -> bytes:
  """One frame encoded by Pillow, its image block repeated: giflib reads (and holds) every frame."""
  single = _pillow_gif(width, height)
  start = 13 + 3 * 2 ** ((single[10] & 7) + 1)
  block = single[single.index(b'\x2c', start):-1]  # descriptor, LZW data; the trailer left out
  return single[:start] + block * frames + b'\x3b'


def photos(count: int = BATCH):
  """Real validation photos, cats and dogs in turn."""
  paths = [sorted(glob.glob(os.path.join(DATA, 'validation', name, '*.jpg')))[:count // 2]
           for name in CLASSES]
  out = []
  for pair in zip(*paths):
    for path in pair:
      with open(path, 'rb') as f:
        out.append(f.read())
  return out


def preprocessing_fn_without_budget(inputs, custom_config):
  """The project's preprocessing_fn as it was before the budget: decode, resize, scale."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features, preprocessing  # pylint: disable=g-import-not-at-top
  return {
      features.TRANSFORMED_IMAGE_KEY: preprocessing.preprocess_images(
          inputs[features.IMAGE_KEY], int(custom_config['image_size'])),
      features.TRANSFORMED_LABEL_KEY: tf.reshape(inputs[features.LABEL_KEY], [-1]),
  }


def transform_graph(out_dir: str, preprocessing_fn):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  import tensorflow_transform.beam as tft_beam  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # pylint: disable=g-import-not-at-top
  from components.modules import features, image_budget  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  raw = [{features.IMAGE_KEY: [data], features.LABEL_KEY: [k % 2]}
         for k, data in enumerate(photos(8))]
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}))
  custom_config = {'image_size': IMAGE_SIZE, **image_budget.as_settings(image_budget_of(None))}
  with tft_beam.Context(temp_dir=os.path.join(out_dir, 'tmp'), force_tf_compat_v1=False):
    transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(
        functools.partial(preprocessing_fn, custom_config=custom_config))
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  metadata_io.write_metadata(metadata,
                             os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(out_dir)


def save_model(tft_output, export_dir: str) -> None:
  """The model as the Trainer saves it: three signatures, the budget its Transform graph holds."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import embedding, model as model_lib, preprocessing, signatures  # pylint: disable=g-import-not-at-top
  model = model_lib.build_model(num_classes=2, image_size=IMAGE_SIZE, alpha=0.35, weights=WEIGHTS,
                                dropout=0.0, learning_rate=1e-3, model='mobilenet_v2')
  logits = model.get_layer(embedding.LOGITS_LAYER)
  logits.set_weights([np.random.RandomState(0).normal(0, 1, logits.kernel.shape), np.zeros(2)])
  served = signatures.make_serving_signatures(model, tft_output, CLASSES)
  images = preprocessing.preprocess_images(tf.constant(photos(64)), IMAGE_SIZE)
  features_of, _ = embedding.embedding_and_logits_function(model)(images)
  baseline = embedding.baseline_from_embeddings(model, features_of.numpy()[:32],
                                                features_of.numpy()[32:])
  signatures.save_served(model, export_dir, {**served,
                                             **embedding.make_embedding_signature(model, baseline)})


def _rss_and_peak():
  status = open('/proc/self/status').read()
  return tuple(int(re.search(rf'{key}:\s+(\d+)', status).group(1)) * 1024
               for key in ('VmRSS', 'VmHWM'))


def measure(model_dir: str, bomb_file: str, batch: int, signature: str) -> dict:
  """In this (fresh) process: the peak RSS above the loaded, warmed model during one request."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(model_dir)
  serve = loaded.signatures[signature]
  normal = photos()
  with open(bomb_file, 'rb') as f:
    bomb = f.read()
  request = [bomb] if batch == 1 else normal[:BOMB_INDEX] + [bomb] + normal[BOMB_INDEX:batch - 1]
  if signature == 'serving_default':
    call = lambda images: serve(examples=tf.constant([tf.train.Example(
        features=tf.train.Features(feature={features.IMAGE_KEY: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[data]))})).SerializeToString()
                                                      for data in images]))
  else:
    call = lambda images: serve(image_bytes=tf.constant(images))
  call(normal[:2])
  with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # resets the high-water mark to the current RSS
  loaded_bytes, _ = _rss_and_peak()
  start = time.time()
  try:
    out = call(request)
    outcome = f"answered: {out['class_names'].numpy()[BOMB_INDEX if batch > 1 else 0].decode()}"
  except tf.errors.InvalidArgumentError as e:
    found = re.search(r'assertion failed: \[(.*?)\]\n', e.message)
    outcome = 'refused: ' + (found.group(1) if found else e.message.splitlines()[0][-160:])
  seconds = time.time() - start
  _, peak = _rss_and_peak()
  return {'loaded_bytes': loaded_bytes, 'peak_above_loaded_bytes': peak - loaded_bytes,
          'seconds': seconds, 'outcome': outcome, 'bomb_bytes': len(bomb)}


def compare(checked_dir: str, unchecked_dir: str) -> dict:
  """Both models on the same photos, every signature: largest differences, time per image."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  models = {name: tf.saved_model.load(d) for name, d in (('checked', checked_dir),
                                                          ('unchecked', unchecked_dir))}
  normal = tf.constant(photos())
  examples = tf.constant([tf.train.Example(features=tf.train.Features(feature={
      'image_raw': tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
  })).SerializeToString() for data in photos()])
  calls = {
      'serving_image_bytes': lambda m: m.signatures['serving_image_bytes'](image_bytes=normal),
      'serving_default': lambda m: m.signatures['serving_default'](examples=examples),
      'serving_image_embedding': lambda m: m.signatures['serving_image_embedding'](
          image_bytes=normal),
  }
  result, times = {}, {name: [] for name in models}
  for signature, call in calls.items():
    outputs = {name: call(model) for name, model in models.items()}
    for key in ('probabilities', 'ood_score'):
      if key in outputs['checked']:
        result[f'{signature} {key}'] = float(np.abs(
            outputs['checked'][key].numpy() - outputs['unchecked'][key].numpy()).max())
  from components.modules import image_budget  # pylint: disable=g-import-not-at-top
  budget = image_budget.of_model(models['checked'])
  check = tf.function(lambda images: image_budget.too_large_reasons(images, budget))
  check(normal)
  times['check alone'] = []
  for _ in range(ROUNDS):
    for name, run in [*((name, functools.partial(calls['serving_image_bytes'], model))
                        for name, model in models.items()), ('check alone', lambda: check(normal))]:
      start = time.time()
      run()
      times[name].append((time.time() - start) / BATCH * 1000)
  result['ms_per_image'] = {name: {'median': float(np.median(t)), 'min': float(np.min(t))}
                            for name, t in times.items()}
  return result


def _child(*args) -> dict:
  output = subprocess.run([sys.executable, '-m', 'benchmarks.image_bombs', *args], cwd=REPO,
                          check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def to_markdown(result: dict) -> str:
  mib = lambda n: f'{n / 2**20:+.1f} MiB'
  ms = lambda s: f'{s * 1000:.0f} ms'
  lines = [
      '# Decompression bombs against the served model (MobileNetV2 alpha 0.35, 160 px)', '',
      f"Measured {result['date']} on {result['machine']}, each cell in a fresh process: the peak "
      'RSS above the loaded, warmed model during one `serving_image_bytes` request (the kernel\'s '
      f"high-water mark, reset before the call), the bomb alone and at index {BOMB_INDEX} of "
      f"{BATCH} real photos. Budget: {result['budget']}.", '',
      '| bomb | file | alone | in a batch of 32 | the request got |', '|---|---|---|---|---|']
  for name, cells in result['bombs'].items():
    alone, batch = cells['1'], cells[str(BATCH)]
    lines.append(f"| {name} | {alone['bomb_bytes'] / 1e6:.2f} MB | "
                 f"{mib(alone['peak_above_loaded_bytes'])}, {ms(alone['seconds'])} | "
                 f"{mib(batch['peak_above_loaded_bytes'])}, {ms(batch['seconds'])} | "
                 f"{batch['outcome']} |")
  lines += ['', 'Without the budget (the same model through a Transform graph without the check), '
                'the bomb alone:', '', '| bomb | peak above the loaded model | time | answer |',
            '|---|---|---|---|']
  for name, cell in result['unchecked'].items():
    lines.append(f"| {name} | {mib(cell['peak_above_loaded_bytes'])} | {ms(cell['seconds'])} | "
                 f"{cell['outcome']} |")
  same = result['same_answers']
  lines += ['', f'{BATCH} real photos through both models: largest difference ' + ', '.join(
      f'{key} {value:.1e}' for key, value in same.items() if key != 'ms_per_image')
            + '.', '', f'Time per image of `serving_image_bytes` on the {BATCH} photos, '
            f'{ROUNDS} interleaved rounds, median (fastest): ' + ', '.join(
                f"{name} {t['median']:.2f} ({t['min']:.2f}) ms"
                for name, t in same['ms_per_image'].items())
            + ' (the header check of the whole batch in a tf.function; a served request runs it '
            'once on the request and once per chunk of 16).']
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--measure', nargs=4, metavar=('MODEL', 'BOMB', 'BATCH', 'SIGNATURE'),
                      help=argparse.SUPPRESS)
  parser.add_argument('--compare', nargs=2, help=argparse.SUPPRESS)
  parser.add_argument('--cases', nargs='*', help='only these bombs (default: all)')
  args = parser.parse_args()
  if args.measure:
    model_dir, bomb_file, batch, signature = args.measure
    print(json.dumps(measure(model_dir, bomb_file, int(batch), signature)))
    return
  if args.compare:
    print(json.dumps(compare(*args.compare)))
    return
  if not (os.path.isdir(DATA) and os.path.exists(WEIGHTS)):
    print(f'skipped: needs {DATA} and {WEIGHTS}')
    return
  import psutil  # pylint: disable=g-import-not-at-top
  from components.modules import image_budget, preprocessing  # pylint: disable=g-import-not-at-top
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  workdir = tempfile.mkdtemp(prefix='image-bombs-')
  try:
    models = {}
    for name, fn in (('checked', preprocessing.preprocessing_fn),
                     ('unchecked', preprocessing_fn_without_budget)):
      models[name] = os.path.join(workdir, f'model_{name}')
      save_model(transform_graph(os.path.join(workdir, f'transform_{name}'), fn), models[name])
    assert image_budget.of_transform_graph(os.path.join(
        workdir, 'transform_unchecked', 'transform_fn')) is None
    result = {'date': time.strftime('%Y-%m-%d'),
              'machine': f'{psutil.cpu_count()} CPUs, '
                         f'{psutil.virtual_memory().total / 2**30:.0f} GiB',
              'budget': '{} pixels, {} bytes'.format(*image_budget_of(None)),
              'bombs': {}, 'unchecked': {},
              'same_answers': _child('--compare', models['checked'], models['unchecked'])}
    for name, make in CASES.items():
      if args.cases and name not in args.cases:
        continue
      bomb_file = os.path.join(workdir, 'bomb')
      with open(bomb_file, 'wb') as f:
        f.write(make())
      result['bombs'][name] = {
          str(batch): _child('--measure', models['checked'], bomb_file, str(batch),
                             'serving_image_bytes') for batch in (1, BATCH)}
      print(name, result['bombs'][name], flush=True)
      if name in UNCHECKED_CASES:
        result['unchecked'][name] = _child('--measure', models['unchecked'], bomb_file, '1',
                                           'serving_image_bytes')
        print('unchecked', name, result['unchecked'][name], flush=True)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  common.write_results('image_bombs', result, to_markdown(result))


if __name__ == '__main__':
  main()
