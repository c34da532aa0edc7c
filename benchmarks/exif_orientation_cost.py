"""Benchmark: what the EXIF orientation step costs per image in the Transform function.

Times, in one process and interleaved round by round, ``preprocessing.preprocess_images`` at 160 px
on 200 real JPEGs (100 cats, 100 dogs of validation/, which carry no EXIF) against the same
function without the orientation step (``tf.io.decode_image`` + resize, the function before it),
then on phone-style copies of the same photos (pixels turned, ``Orientation=6``), and the parser
alone. Writes benchmarks/results/exif_orientation_cost.{json,md}. Skips when ../shared is absent.

    python -m benchmarks.exif_orientation_cost
"""
import os
import statistics
import sys
import time

import bootstrap  # pylint: disable=unused-import

# pylint: disable=wrong-import-position
import tensorflow as tf

from benchmarks import common
from benchmarks.exif_orientation_accuracy import decode_and_resize_ignoring_orientation, phone_copy
from benchmarks.common import DATA
from components.modules import exif_orientation, preprocessing

IMAGES_PER_CLASS = 100
IMAGE_SIZE = 160
ROUNDS = 7


def _photos():
  photos = []
  for class_name in ('cats', 'dogs'):
    folder = os.path.join(DATA, 'validation', class_name)
    for name in sorted(os.listdir(folder))[:IMAGES_PER_CLASS]:
      with open(os.path.join(folder, name), 'rb') as f:
        photos.append(f.read())
  return photos


def _batch_fn(per_image, output_spec):
  return tf.function(lambda batch: tf.map_fn(per_image, batch, fn_output_signature=output_spec),
                     input_signature=[tf.TensorSpec([None], tf.string)])


def main() -> int:
  if not os.path.isdir(DATA):
    print(f'skipped: {DATA} is absent')
    return 0
  photos = _photos()
  tagged = [phone_copy(data, 6) for data in photos]
  image_spec = tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32)
  without_orientation = _batch_fn(
      lambda data: decode_and_resize_ignoring_orientation(data, IMAGE_SIZE), image_spec)
  with_orientation = _batch_fn(
      lambda data: preprocessing.decode_and_resize(data, IMAGE_SIZE), image_spec)
  parser_alone = _batch_fn(exif_orientation.jpeg_orientation, tf.TensorSpec([], tf.int32))
  cases = {
      'without orientation step, untagged photos': (without_orientation, photos),
      'with orientation step, untagged photos': (with_orientation, photos),
      'with orientation step, Orientation=6 copies': (with_orientation, tagged),
      'without orientation step, Orientation=6 copies': (without_orientation, tagged),
      'parser alone, untagged photos': (parser_alone, photos),
      'parser alone, Orientation=6 copies': (parser_alone, tagged),
  }
  times = {name: [] for name in cases}
  for fn, data in cases.values():
    fn(tf.constant(data[:2]))  # trace once
  for _ in range(ROUNDS):
    for name, (fn, data) in cases.items():
      batch = tf.constant(data)
      start = time.perf_counter()
      fn(batch)
      times[name].append((time.perf_counter() - start) / len(data) * 1000)
  results = {name: {'median_ms_per_image': round(statistics.median(t), 3),
                    'min_ms_per_image': round(min(t), 3)} for name, t in times.items()}
  lines = [f'# EXIF orientation cost ({len(photos)} real JPEGs, {IMAGE_SIZE} px, median of '
           f'{ROUNDS} interleaved rounds, {os.cpu_count()} shared CPUs)', '',
           '| case | ms per image (median) | ms per image (min) |', '|---|---|---|']
  lines += [f"| {name} | {r['median_ms_per_image']} | {r['min_ms_per_image']} |"
            for name, r in results.items()]
  common.write_results('exif_orientation_cost', {
      'images': len(photos), 'image_size': IMAGE_SIZE, 'rounds': ROUNDS,
      'cpus': os.cpu_count(), 'results': results}, '\n'.join(lines) + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
