"""One HTML page per pipeline run, with its pictures as PNG files, read back from MLMD and artifacts.

Nothing of the pipeline is re-run: the data counts come from the ExampleGen's summary, the anomalies
from the validators' artifacts, the curves from the Trainer's history, the metrics, confusion
matrix and blessing from the Evaluator's output, all of the one run named (``run_results/report/``
holds the sections, charts and HTML). The one computation is the grid of the worst mistakes: the
run's trained model classifies the test split through its ``serving_default`` signature, as TF
Serving would.

    python -m run_results.run_report --pipeline-root runs/sample/pipeline_root [--run-id RUN_ID]
"""
import argparse
import json
import os
import re
import time
from typing import List, Optional

import tensorflow as tf

from pipeline import configs
from run_results import mlmd_runs
from run_results import run_summary
from run_results.report import sections
from run_results.report.page import Page, table

REPORT_FILE = 'report.html'


def write_report(metadata_path: str, reports_dir: str, run_id: Optional[str] = None) -> str:
  """Writes ``<reports_dir>/<run id>/report.html`` and its PNGs for the run ``run_id`` (the newest
  run when None); returns the page's path."""
  run = mlmd_runs.find_run(mlmd_runs.open_store(metadata_path), run_id)
  # Run ids are timestamps such as 2026-11-24T05:08:20.165792; keep the folder name portable.
  output_dir = os.path.join(reports_dir, re.sub(r'[^0-9A-Za-z._-]', '-', run.run_id))
  tf.io.gfile.makedirs(output_dir)
  page = Page(output_dir)
  summary = run_summary.from_run(run)
  examples = run.output('ImageExampleGen', 'Examples')
  class_names = json.loads(examples.custom_properties['class_names'].string_value) if examples else []

  page.section('Outcome', sections.verdict(summary, run))
  train = sections.data(page, examples, class_names) if examples else []
  sections.data_checks(page, run, examples)
  sections.training(page, run, train)
  sections.evaluation(page, run, summary, examples, class_names)
  sections.tflite(page, run)
  page.section('Components', table(
      ['component', 'state', 'seconds'],
      [[node, state, f'{seconds:.1f}'] for node, (state, seconds) in summary.executions.items()]))
  started = time.localtime(run.context.create_time_since_epoch / 1000)
  title = f"Run {run.run_id} ({time.strftime('%Y-%m-%d %H:%M', started)})"
  path = os.path.join(output_dir, REPORT_FILE)
  with tf.io.gfile.GFile(path, 'w') as f:
    f.write(page.html(title))
  return path


def reports_dir(pipeline_root: str) -> str:
  return os.path.join(pipeline_root, 'reports')


def main(argv: Optional[List[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pipeline-root', required=True, help="the pipeline's root (its MLMD)")
  parser.add_argument('--run-id', help='pipeline run id to report on (default: the newest run)')
  args = parser.parse_args(argv)
  print(write_report(configs.metadata_path_of(args.pipeline_root),
                     reports_dir(args.pipeline_root), args.run_id))


if __name__ == '__main__':
  main()
