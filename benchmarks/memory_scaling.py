"""Benchmark: peak memory and wall time of the data stages on 1x and 10x the real images.

The data stages are the pipeline's components up to and including Transform (ImageExampleGen,
StatisticsGen, SchemaGen, the data checks, Transform), taken from ``create_pipeline`` with the
cats_and_dogs_filtered settings, so the benchmark measures exactly what a run executes. The 10x
data set is made on the fly in a temporary folder: every real image re-encoded N times with a
random flip, rotation, crop, brightness and JPEG quality, so the copies are distinct files with
distinct bytes. Each scale runs in a fresh process on a fresh pipeline root; memory is the PSS summed
over the process tree, sampled every 0.5 s. The aim: the 10x peak stays within 1.5x of the 1x peak.
Writes benchmarks/results/memory_scaling.{json,md}.

    python -m benchmarks.memory_scaling [--scale 10]
"""
import argparse
import io
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from typing import Dict, Tuple

import psutil
from PIL import Image, ImageEnhance, ImageOps

from benchmarks import common
from benchmarks.common import DATA, du, run_measured

STAGES_END = 'Transform'


def _augmented_copies(job: Tuple[str, str, int]) -> int:
  """Writes ``copies`` augmented re-encodings of the image at ``source`` into ``target_dir``."""
  source, target_dir, copies = job
  with Image.open(source) as original:
    original = original.convert('RGB')
  stem = os.path.splitext(os.path.basename(source))[0]
  for copy in range(copies):
    rng = random.Random(f'{source}-{copy}')
    image = ImageOps.mirror(original) if rng.random() < 0.5 else original
    image = image.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, expand=False)
    width, height = image.size
    keep = rng.uniform(0.85, 1.0)
    left, top = rng.uniform(0, 1 - keep) * width, rng.uniform(0, 1 - keep) * height
    image = image.crop((int(left), int(top), int(left + keep * width), int(top + keep * height)))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    buffer = io.BytesIO()
    image.save(buffer, 'JPEG', quality=rng.randint(75, 95))
    with open(os.path.join(target_dir, f'{stem}.aug{copy}.jpg'), 'wb') as f:
      f.write(buffer.getvalue())
  return copies


def _count_files(root: str) -> int:
  return sum(len(files) for _, _, files in os.walk(root))


def make_scaled_tree(scale: int, out: str) -> str:
  """DATA's layout with ``scale`` augmented copies of every image."""
  jobs = []
  for folder, _, files in os.walk(DATA):
    images = [name for name in files if name.lower().endswith('.jpg')]
    if images:
      target = os.path.join(out, os.path.relpath(folder, DATA))
      os.makedirs(target, exist_ok=True)
      jobs += [(os.path.join(folder, name), target, scale) for name in images]
  with multiprocessing.Pool() as pool:
    total = sum(pool.imap_unordered(_augmented_copies, jobs, chunksize=50))
  print(f'made {total} images in {out}', flush=True)
  return out


def run_stages(data_root: str, workdir: str) -> None:
  """Runs the pipeline's components up to Transform (called in a child process)."""
  from runner import flags  # pylint: disable=g-import-not-at-top
  from runner import local_resources  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  args = flags.local_parser().parse_args([
      '--data-root', data_root,
      '--pipeline-root', os.path.join(workdir, 'pipeline_root'),
      '--serving-dir', os.path.join(workdir, 'serving')])
  pipeline = create_pipeline(local_resources.local_config(args))
  ids = [component.id for component in pipeline.components]
  stages = pipeline.components[:ids.index(STAGES_END) + 1]
  for component in stages:  # cut the links to the training part
    for downstream in list(component.downstream_nodes):
      if downstream not in stages:
        component.remove_downstream_node(downstream)
  pipeline.components = stages
  LocalDagRunner().run(pipeline)


def measure(data_root: str, images: int) -> Dict[str, object]:
  from pipeline import configs  # pylint: disable=g-import-not-at-top
  from run_results import run_summary  # pylint: disable=g-import-not-at-top
  workdir = tempfile.mkdtemp(prefix='cats-dogs-memory-')
  try:
    measured = run_measured([sys.executable, '-m', 'benchmarks.memory_scaling', '--run-stages',
                             data_root, '--workdir', workdir])
    executions = run_summary.summarize(
        configs.metadata_path_of(os.path.join(workdir, 'pipeline_root'))).executions
    return {'images': images, 'raw_bytes': du(data_root),
            'wall_seconds': measured['wall_seconds'],
            'peak_memory_bytes': measured['peak_memory_bytes'],
            'component_seconds': {node: seconds for node, (_, seconds) in executions.items()}}
  finally:
    shutil.rmtree(workdir, ignore_errors=True)


def to_markdown(result: Dict[str, object]) -> str:
  one, scaled = result['runs']['1x'], result['runs'][f"{result['scale']}x"]
  gib = 1 << 30
  ratio = scaled['peak_memory_bytes'] / one['peak_memory_bytes']
  nodes = sorted(one['component_seconds'], key=lambda n: -scaled['component_seconds'].get(n, 0))
  lines = [
      f"# Data stages on 1x and {result['scale']}x the real images", '',
      f"Measured {result['date']} on {result['machine']}: ImageExampleGen -> StatisticsGen -> "
      'SchemaGen -> data checks -> Transform, DirectRunner multi_processing on all cores.', '',
      f"| | 1x | {result['scale']}x |", '|---|---|---|',
      f"| images | {one['images']} | {scaled['images']} |",
      f"| raw data | {one['raw_bytes'] / 2**20:.0f} MiB | {scaled['raw_bytes'] / 2**20:.0f} MiB |",
      f"| wall time | {one['wall_seconds']:.0f} s | {scaled['wall_seconds']:.0f} s |",
      f"| peak memory (PSS, process tree) | {one['peak_memory_bytes'] / gib:.2f} GiB | "
      f"{scaled['peak_memory_bytes'] / gib:.2f} GiB |",
      '', f'Peak memory ratio {ratio:.2f}x (aim: <= 1.5x).', '',
      f"| component seconds | 1x | {result['scale']}x |", '|---|---|---|',
  ] + [f"| {node} | {one['component_seconds'][node]:.1f} | "
       f"{scaled['component_seconds'].get(node, float('nan')):.1f} |" for node in nodes]
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--scale', type=int, default=10, help='copies of every image (default 10)')
  parser.add_argument('--run-stages', metavar='DATA_ROOT', help=argparse.SUPPRESS)
  parser.add_argument('--workdir', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.run_stages:
    sys.argv = sys.argv[:1]  # TFX's Beam executors parse sys.argv as absl flags
    run_stages(args.run_stages, args.workdir)
    return
  if not os.path.isdir(DATA):
    print(f'skipped: needs {DATA}')
    return
  scaled_root = tempfile.mkdtemp(prefix='cats-dogs-scaled-')
  try:
    make_scaled_tree(args.scale, scaled_root)
    result = {
        'date': time.strftime('%Y-%m-%d'),
        'machine': f'{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB',
        'scale': args.scale,
        'runs': {'1x': measure(DATA, _count_files(DATA)),
                 f'{args.scale}x': measure(scaled_root, _count_files(scaled_root))},
    }
  finally:
    shutil.rmtree(scaled_root, ignore_errors=True)
  common.write_results('memory_scaling', result, to_markdown(result))


if __name__ == '__main__':
  main()
