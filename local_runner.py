"""Runs the image-classification TFX pipeline on this machine: LocalDagRunner, Beam, MLMD in SQLite.

    python local_runner.py                                   # embedded synthetic sample, a minute
    python local_runner.py --data-root DIR --weights my_no_top.h5   # your images, offline
    python local_runner.py --dataset cats_and_dogs_filtered  # the tutorial's data (download)
"""
import bootstrap  # pylint: disable=unused-import  # first: the Keras switch, before TensorFlow
import argparse
import os
import sys
from typing import List, Optional

from pipeline import configs
from runner import flags
from runner import local_resources
from runner import run_lock
from runner import run_logging

SAMPLE_ROOT = flags.SAMPLE_ROOT


def describe_recipe(config: configs.PipelineConfig) -> str:
  """E.g. 'recipe transfer: frozen mobilenet_v2 (alpha 1, weights x.h5) at 160 px, its head tuned
  in 12 trials'."""
  weights = os.path.basename(config.weights)
  if config.trains_on_features:
    tuning = (f'its head tuned in {config.tuner_trials} trials' if config.tuner_trials
              else 'its head at the recipe\'s learning rate (no tuning)')
    return (f'recipe {config.recipe}: frozen {config.model} (alpha {config.alpha:g}, weights '
            f'{weights}) at {config.image_size} px, {tuning}')
  return (f'recipe {config.recipe}: {config.model} trained on the images at {config.image_size} px '
          f'for {config.epochs} epochs (weights {weights})')


def build_parser() -> argparse.ArgumentParser:
  return flags.local_parser(description=__doc__)


def config_from_args(args: argparse.Namespace) -> configs.PipelineConfig:
  return local_resources.local_config(args)


def run(config: configs.PipelineConfig) -> None:
  from tfx.orchestration.local.local_dag_runner import LocalDagRunner  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  pipeline = create_pipeline(config)
  # TFX's Beam executors parse sys.argv as absl flags (a caller's '-v X' breaks them); everything
  # the pipeline needs is in config, so they get the program name only.
  argv, sys.argv = sys.argv, sys.argv[:1]
  try:
    LocalDagRunner().run(pipeline)
  finally:
    sys.argv = argv


def recorded_runs(config: configs.PipelineConfig) -> List[str]:
  """The pipeline run ids in the config's MLMD, oldest first."""
  from run_results import mlmd_runs  # pylint: disable=g-import-not-at-top
  if not os.path.exists(config.metadata_path):
    return []
  return mlmd_runs.run_ids(mlmd_runs.open_store(config.metadata_path))


def this_run(config: configs.PipelineConfig, known: List[str]) -> Optional[str]:
  """The id of the run just executed: LocalDagRunner names a run itself (its start time) and
  does not return the name, so it is the run recorded since ``known`` (None if nothing was)."""
  new = [run_id for run_id in recorded_runs(config) if run_id not in known]
  return new[-1] if new else None


def report(config: configs.PipelineConfig, run_id: Optional[str] = None) -> str:
  """What the run read, the Evaluator's verdict with the numbers that decided it, and where the
  model went, read back from MLMD for the run ``run_id`` (the newest when None)."""
  from run_results import mlmd_runs, run_summary  # pylint: disable=g-import-not-at-top
  summary = run_summary.summarize(config.metadata_path, run_id)
  counts = summary.file_counts
  lines = []
  if counts:
    lines.append(f"images: {counts['images_used']} of {counts['files_seen']} files used, "
                 f"{counts['files_skipped']} skipped (listed with reasons in "
                 f'{summary.image_summary_path})')
  if summary.splits:
    lines.append(f'splits: {summary.splits}')
  run = mlmd_runs.find_run(mlmd_runs.open_store(config.metadata_path), summary.run_id)
  quality = run_summary.data_quality(run)
  if quality:
    lines.append('data quality: ' + run_summary.data_quality_line(quality))
  lines += run_summary.decision_lines(summary)
  if summary.blessed:
    lines.append(f'model blessed; pushed to {summary.pushed_to}')
  elif summary.blessed is not None:
    lines.append(f'model NOT blessed; nothing was pushed to {config.serving_dir}')
  return '\n'.join(lines)


def write_run_report(config: configs.PipelineConfig, run_id: Optional[str] = None) -> Optional[str]:
  """The HTML report of the run ``run_id`` (the newest when None; run_results/run_report.py); None,
  with a note, when it cannot be written."""
  from run_results import run_report  # pylint: disable=g-import-not-at-top
  if not os.path.exists(config.metadata_path):  # stopped before anything ran
    return None
  try:
    return run_report.write_report(config.metadata_path,
                                   run_report.reports_dir(config.pipeline_root), run_id)
  except Exception as e:  # pylint: disable=broad-except
    print(f'(no run report: {type(e).__name__}: {e})', file=sys.stderr)
    return None


def write_model_card(config: configs.PipelineConfig, run_id: Optional[str]) -> Optional[str]:
  """The Markdown model card of the version the run ``run_id`` pushed (run_results/model_card.py);
  None when it pushed nothing, or, with a note, when the card cannot be written."""
  from run_results import model_card, run_summary  # pylint: disable=g-import-not-at-top
  pushed_to = run_summary.summarize(config.metadata_path, run_id).pushed_to
  if not pushed_to:
    return None
  try:
    return model_card.write_for_version(config.serving_dir, config.pipeline_root,
                                        os.path.basename(pushed_to))['md']
  except Exception as e:  # pylint: disable=broad-except
    print(f'(no model card: {type(e).__name__}: {e})', file=sys.stderr)
    return None


def main(argv: Optional[List[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  run_logging.configure_logging(args.verbose)
  try:
    config = config_from_args(args)
    root_lock = run_lock.acquire(config.pipeline_root)  # until main returns, or the process dies
    print(f'pipeline:      {config.pipeline_name}, {describe_recipe(config)}\n'
          f'pipeline root: {config.pipeline_root}\ndata root:     {config.data_root}', flush=True)
  except configs.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except Exception as e:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
    return getattr(e, 'exit_status', 1)
  known = recorded_runs(config)
  try:
    run(config)
  except Exception as e:  # pylint: disable=broad-except
    if args.verbose:
      raise
    print(f'error: {type(e).__name__}: {e}', file=sys.stderr)
    if hasattr(e, 'exit_status'):  # a usage error, e.g. a data root without images: said in full
      return e.exit_status
    print('(run again with --verbose for the full log and traceback)', file=sys.stderr)
    run_id = this_run(config, known)
    report_path = write_run_report(config, run_id) if run_id else None
    if report_path:
      print(f'report of what ran: {report_path}', file=sys.stderr)
    return 1
  run_id = this_run(config, known)
  print(report(config, run_id))
  report_path = write_run_report(config, run_id)
  if report_path:
    print(f'report: {report_path}')
  card = write_model_card(config, run_id)
  if card:
    print(f'model card: {card}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
