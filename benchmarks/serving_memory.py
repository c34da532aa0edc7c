"""Benchmark: the served model's memory and speed by the request's batch, per ``SERVING_CHUNK``.

TFMA sends the Evaluator's model record batches that tfx_bsl grows up to 1 000 examples; TF
Serving and predict.py send what their callers batch. This saves the tutorial's model (MobileNetV2
alpha 1.0 from ../shared/weights, 160 px, through a real-data run's Transform graph) with the
serving signatures cut into chunks of 8, 16 and 32 images and uncut, then, each in a fresh
process, calls ``serving_default`` once on the test split's examples (224) and once on 1 000 of
them (the split repeated): the peak RSS over the loaded model, sampled every 50 ms, and the time
per image. Every variant's probabilities are checked against the uncut model's. Writes
benchmarks/results/serving_memory.{json,md}.

    python -m benchmarks.serving_memory [--pipeline-root ROOT_OF_A_REAL_DATA_RUN]

Without ``--pipeline-root`` it first runs local_runner.py on the real data for one epoch (the
head's weights do not change the memory or the time).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchmarks import common
from benchmarks import pipeline_benchmark

UNCUT = 1 << 30
CHUNKS = (UNCUT, 32, 16, 8)
BATCHES = (224, 1000)


def examples_of(pipeline_root: str, split: str) -> str:
  return os.path.join(pipeline_root, 'ImageExampleGen', 'examples', '*', f'Split-{split}', '*')


def save_variants(pipeline_root: str, out_dir: str) -> dict:
  """One served model per chunk size: {chunk: export dir}."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from components.modules import embedding, model as model_lib, signatures  # pylint: disable=g-import-not-at-top
  tft_output = tft.TFTransformOutput(
      glob.glob(os.path.join(pipeline_root, 'Transform', 'transform_graph', '*'))[0])
  exports = {}
  for chunk in CHUNKS:
    embedding.SERVING_CHUNK = chunk  # read when the signatures are traced
    model = model_lib.build_model(num_classes=2, image_size=160, alpha=1.0,
                                  weights=common.WEIGHTS, dropout=0.2,
                                  learning_rate=1e-4, model='mobilenet_v2')
    exports[chunk] = os.path.join(out_dir, f'chunk_{chunk}')
    signatures.save_served(model, exports[chunk], signatures.make_serving_signatures(
        model, tft_output, ['cats', 'dogs']))
  return exports


def measure(model_dir: str, examples_glob: str, batch: int, probabilities_file: str) -> None:
  """In this (fresh) process: loads the model, warms it on 2 examples, then prints the peak RSS
  above that and the time of one call on ``batch`` examples as JSON; saves the probabilities."""
  import psutil  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  records = [r.numpy() for r in tf.data.TFRecordDataset(sorted(glob.glob(examples_glob)),
                                                         compression_type='GZIP')]
  records = (records * (batch // len(records) + 1))[:batch]
  serve = tf.saved_model.load(model_dir).signatures['serving_default']
  serve(examples=tf.constant(records[:2]))
  process = psutil.Process()
  loaded = peak = process.memory_info().rss
  done = threading.Event()

  def sample():
    nonlocal peak
    while not done.is_set():
      peak = max(peak, process.memory_info().rss)
      time.sleep(0.05)

  sampler = threading.Thread(target=sample)
  sampler.start()
  start = time.time()
  probabilities = serve(examples=tf.constant(records))['probabilities'].numpy()
  seconds = time.time() - start
  done.set()
  sampler.join()
  np.save(probabilities_file, probabilities)
  print(json.dumps({'loaded_bytes': loaded, 'peak_above_loaded_bytes': peak - loaded,
                    'ms_per_image': seconds / batch * 1000}))


def run_measure(model_dir: str, examples_glob: str, batch: int, probabilities_file: str) -> dict:
  output = subprocess.run(
      [sys.executable, '-m', 'benchmarks.serving_memory', '--measure', model_dir,
       '--examples', examples_glob, '--batch', str(batch), '--probabilities', probabilities_file],
      cwd=common.REPO, check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def to_markdown(result: dict) -> str:
  name = lambda chunk: 'uncut' if int(chunk) == UNCUT else f'by {chunk}'
  lines = [
      '# Served model memory by request batch (MobileNetV2 alpha 1.0, 160 px, serving_default)', '',
      f"Measured {result['date']} on {result['machine']}, each cell in a fresh process. Peak RSS "
      'above the loaded, warmed model during one call; time per image of that call.', '',
      '| chunk | ' + ' | '.join(f'batch {b}' for b in BATCHES) + ' |',
      '|---' * (len(BATCHES) + 1) + '|']
  for chunk, cells in result['chunks'].items():
    lines.append(f'| {name(chunk)} | ' + ' | '.join(
        f"+{cells[str(b)]['peak_above_loaded_bytes'] / 2**20:.0f} MiB, "
        f"{cells[str(b)]['ms_per_image']:.1f} ms/image" for b in BATCHES) + ' |')
  lines += ['', f"Largest probability difference from the uncut model: "
                f"{result['max_probability_difference']:.1e}."]
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pipeline-root', help='a finished run on the real data (default: one is '
                                              'made, one epoch)')
  parser.add_argument('--measure', help=argparse.SUPPRESS)
  parser.add_argument('--examples', help=argparse.SUPPRESS)
  parser.add_argument('--batch', type=int, help=argparse.SUPPRESS)
  parser.add_argument('--probabilities', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.measure:
    measure(args.measure, args.examples, args.batch, args.probabilities)
    return
  if not (os.path.isdir(common.DATA) and os.path.exists(common.WEIGHTS)):
    print(f'skipped: needs {common.DATA} and {common.WEIGHTS}')
    return
  workdir = tempfile.mkdtemp(prefix='serving-memory-')
  try:
    pipeline_root = args.pipeline_root
    if not pipeline_root:
      pipeline_root = os.path.join(workdir, 'run', 'pipeline_root')
      pipeline_benchmark.run_pipeline(os.path.join(workdir, 'run'), epochs=1, fine_tune_epochs=0)
    exports = save_variants(pipeline_root, workdir)
    chunks, differences = {}, []
    for chunk, model_dir in exports.items():
      chunks[chunk] = {}
      for batch in BATCHES:
        probabilities_file = os.path.join(workdir, f'p_{chunk}_{batch}.npy')
        chunks[chunk][str(batch)] = run_measure(model_dir, examples_of(pipeline_root, 'test'),
                                                batch, probabilities_file)
        differences.append(np.abs(np.load(probabilities_file) - np.load(
            os.path.join(workdir, f'p_{UNCUT}_{batch}.npy'))).max())
        print(chunk, batch, chunks[chunk][str(batch)], flush=True)
  finally:
    shutil.rmtree(workdir, ignore_errors=True)
  result = {'date': time.strftime('%Y-%m-%d'), 'machine': common.machine(),
            'chunks': chunks, 'max_probability_difference': float(max(differences))}
  # As read back from the JSON: its keys are strings.
  common.write_results('serving_memory', result, to_markdown(json.loads(json.dumps(result))))


if __name__ == '__main__':
  main()
