"""What every benchmark shares: where ../shared and the results are, measuring a command's wall
time and peak memory, and writing a result as JSON and Markdown side by side."""
import json
import os
import subprocess
import sys
import threading
import time
from typing import Dict, List

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('CATS_DOGS_SHARED', os.path.join(os.path.dirname(REPO), 'shared'))
DATASETS = os.path.join(SHARED, 'datasets')
# The tutorial's data set, which most benchmarks measure on.
DATA = os.path.join(DATASETS, 'cats_and_dogs_filtered')
WEIGHTS = os.path.join(SHARED, 'weights', 'mobilenet_v2_1.0_160_no_top_partly_dogs_finetuned.h5')
WEIGHTS_035 = os.path.join(SHARED, 'weights', 'mobilenet_v2_0.35_no_top_imagenet.h5')
RESULTS = os.path.join(REPO, 'benchmarks', 'results')


def machine() -> str:
  """E.g. '2 CPUs, 23 GiB'."""
  return f'{psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB'


def du(path: str) -> int:
  """Bytes of the files below ``path``."""
  return sum(os.path.getsize(os.path.join(folder, name))
             for folder, _, files in os.walk(path) for name in files)


def _high_water_mark(pid: int) -> int:
  """Peak RSS in bytes of process ``pid`` so far (Linux's VmHWM); 0 once it has exited."""
  with open(f'/proc/{pid}/status') as f:
    for line in f:
      if line.startswith('VmHWM:'):
        return int(line.split()[1]) * 1024
  return 0


def run_measured(command: List[str], echo: bool = True) -> Dict[str, object]:
  """Runs ``command`` in the repository; returns wall seconds, peak memory in bytes, and its stdout.

  Memory is the proportional set size (PSS) summed over the process tree: Beam's worker processes
  map the same TensorFlow libraries, which a plain RSS sum would count once per process. Sampled
  every 0.5 s, it can miss the peak of a command that lasts a second or two; ``peak_rss_bytes``
  is the command's own process's peak RSS (VmHWM, which only grows, read every 20 ms). Not the
  child's ru_maxrss from wait4: Linux counts in it the memory of the parent it was spawned from.
  """
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  start = time.time()
  process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
  peak, peak_rss = [0], [0]

  def sample():
    root = psutil.Process(process.pid)
    next_pss = 0.0
    while process.poll() is None:
      try:
        peak_rss[0] = max(peak_rss[0], _high_water_mark(process.pid))
        if time.time() >= next_pss:
          tree = [root] + root.children(recursive=True)
          peak[0] = max(peak[0], sum(p.memory_full_info().pss for p in tree if p.is_running()))
          next_pss = time.time() + 0.5
      except (psutil.Error, OSError):
        pass
      time.sleep(0.02)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  stdout_lines = []
  for line in process.stdout:
    if echo:
      sys.stdout.write(line)
    stdout_lines.append(line)
  process.wait()
  sampler.join()
  if process.returncode:
    raise SystemExit(f'{" ".join(command[:3])} failed with exit code {process.returncode}')
  return {'wall_seconds': time.time() - start, 'peak_memory_bytes': peak[0],
          'peak_rss_bytes': peak_rss[0], 'stdout': ''.join(stdout_lines)}


def write_results(name: str, result: Dict[str, object], markdown: str) -> str:
  """Writes benchmarks/results/<name>.json and .md; prints the Markdown; returns its path."""
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, f'{name}.json'), 'w') as f:
    json.dump(result, f, indent=1, sort_keys=True, default=str)
  path = os.path.join(RESULTS, f'{name}.md')
  with open(path, 'w') as f:
    f.write(markdown)
  print(markdown)
  return path
