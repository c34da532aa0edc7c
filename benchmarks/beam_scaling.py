"""Benchmark: ImageExampleGen + StatisticsGen on the real images with 1 and 2 Beam workers.

Shows that the Beam components run in parallel under DirectRunner's multi_processing mode (the
local stand-in for Dataflow/Flink/Spark workers). Each worker count gets a fresh pipeline root, so
nothing comes from the cache. Writes benchmarks/results/beam_scaling.{json,md}.

    python benchmarks/beam_scaling.py [--workers 1 2]
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

# pylint: disable=wrong-import-position
from tfx import v1 as tfx

from benchmarks.pipeline_benchmark import DATA, RESULTS
from components.image_example_gen import ImageExampleGen
from pipeline import beam_presets, run_summary
from pipeline.pipeline import label_stats_options


def run_once(workers: int, root: str) -> dict:
  example_gen = ImageExampleGen(input_base=DATA)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'], stats_options=label_stats_options())
  metadata_path = os.path.join(root, 'metadata.sqlite')
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='beam_scaling', pipeline_root=root,
      components=[example_gen, statistics_gen],
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path),
      beam_pipeline_args=beam_presets.direct(workers))
  start = time.time()
  tfx.orchestration.LocalDagRunner().run(pipeline)
  wall = time.time() - start
  executions = run_summary.summarize(metadata_path).executions
  return {'wall_seconds': wall,
          'component_seconds': {node: seconds for node, (_, seconds) in executions.items()}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
  args = parser.parse_args()
  if not os.path.isdir(DATA):
    print(f'skipped: needs {DATA}')
    return
  results = {}
  for workers in args.workers:
    with tempfile.TemporaryDirectory(prefix='beam-scaling-') as root:
      results[workers] = run_once(workers, root)
      print(f'{workers} worker(s): {results[workers]}', file=sys.stderr)
  base = results[args.workers[0]]['wall_seconds']
  lines = ['# ImageExampleGen + StatisticsGen on cats_and_dogs_filtered (3000 JPEGs), DirectRunner '
           'multi_processing', '', f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs.",
           '', '| workers | ImageExampleGen s | StatisticsGen s | total s | speed-up |',
           '|---|---|---|---|---|']
  for workers, result in results.items():
    seconds = result['component_seconds']
    lines.append(f"| {workers} | {seconds['ImageExampleGen']:.1f} | {seconds['StatisticsGen']:.1f} "
                 f"| {result['wall_seconds']:.1f} | {base / result['wall_seconds']:.2f}x |")
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, 'beam_scaling.json'), 'w') as f:
    json.dump(results, f, indent=1)
  with open(os.path.join(RESULTS, 'beam_scaling.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
