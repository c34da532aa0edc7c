"""Benchmark: ImageExampleGen + StatisticsGen on the real images with 1 and 2 Beam workers.

Shows whether the Beam components run in parallel under DirectRunner's multi_processing mode (the
local stand-in for Dataflow/Flink/Spark workers). Each worker count gets a fresh pipeline root, so
nothing comes from the cache. ``--replicate N`` reads every image N times (symbolic links in a
temporary tree, as distinct files), for a workload larger than Beam's fixed start-up cost.
Writes benchmarks/results/beam_scaling.{json,md}.

    python -m benchmarks.beam_scaling [--workers 1 2] [--replicate 10]
"""
import argparse
import os
import sys
import tempfile
import time

from pipeline import configs
# pylint: disable=g-bad-import-order
from tfx.components import StatisticsGen
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.pipeline import Pipeline

from benchmarks import common
from benchmarks.common import DATA
from components.image_example_gen import ImageExampleGen
from pipeline import beam_presets
from run_results import run_summary
from pipeline.pipeline import statistics_options


def replicated_tree(copies: int, out: str) -> str:
  """DATA with every image linked ``copies`` times under distinct names."""
  for folder, _, files in os.walk(DATA):
    target = os.path.join(out, os.path.relpath(folder, DATA))
    os.makedirs(target, exist_ok=True)
    for name in files:
      for copy in range(copies):
        os.symlink(os.path.join(folder, name), os.path.join(target, f'{copy}-{name}'))
  return out


def run_once(workers: int, data_root: str, root: str) -> dict:
  example_gen = ImageExampleGen(
      input_base=data_root, **{name: configs.default(name) for name in (
          'test_fraction', 'split_ratios', 'max_skipped_fraction')})
  statistics_gen = StatisticsGen(
      examples=example_gen.outputs['examples'], stats_options=statistics_options())
  metadata_path = configs.metadata_path_of(root)
  pipeline = Pipeline(
      pipeline_name='beam_scaling', pipeline_root=root,
      components=[example_gen, statistics_gen],
      metadata_connection_config=metadata.sqlite_metadata_connection_config(
          metadata_path),
      beam_pipeline_args=beam_presets.direct(workers))
  start = time.time()
  LocalDagRunner().run(pipeline)
  wall = time.time() - start
  executions = run_summary.summarize(metadata_path).executions
  return {'wall_seconds': wall,
          'component_seconds': {node: seconds for node, (_, seconds) in executions.items()}}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
  parser.add_argument('--replicate', type=int, default=1, help='read every image N times')
  args = parser.parse_args()
  if not os.path.isdir(DATA):
    print(f'skipped: needs {DATA}')
    return
  results = {}
  with tempfile.TemporaryDirectory(prefix='beam-scaling-data-') as scratch:
    data_root = replicated_tree(args.replicate, scratch) if args.replicate > 1 else DATA
    for workers in args.workers:
      with tempfile.TemporaryDirectory(prefix='beam-scaling-') as root:
        results[workers] = run_once(workers, data_root, root)
        print(f'{workers} worker(s): {results[workers]}', file=sys.stderr)
  base = results[args.workers[0]]['wall_seconds']
  lines = [f'# ImageExampleGen + StatisticsGen on cats_and_dogs_filtered x{args.replicate} '
           f'({3000 * args.replicate} JPEGs), DirectRunner multi_processing', '',
           f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPUs.",
           '', '| workers | ImageExampleGen s | StatisticsGen s | total s | speed-up |',
           '|---|---|---|---|---|']
  for workers, result in results.items():
    seconds = result['component_seconds']
    lines.append(f"| {workers} | {seconds['ImageExampleGen']:.1f} | {seconds['StatisticsGen']:.1f} "
                 f"| {result['wall_seconds']:.1f} | {base / result['wall_seconds']:.2f}x |")
  name = 'beam_scaling' if args.replicate == 1 else f'beam_scaling_x{args.replicate}'
  common.write_results(name, results, '\n'.join(lines) + '\n')


if __name__ == '__main__':
  main()
