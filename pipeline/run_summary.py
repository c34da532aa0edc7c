"""What one run decided, read back from MLMD and its artifacts (nothing is re-run)."""
import dataclasses
import json
import os
from typing import Dict, Optional, Tuple

from components.image_example_gen.summary import SUMMARY_FILE
from pipeline import blessing_gate
from pipeline import mlmd_runs
from pipeline import tfma_results

FILE_COUNTS = ('files_seen', 'images_used', 'files_skipped')


@dataclasses.dataclass
class RunSummary:
  run_id: str
  blessed: Optional[bool]
  pushed_to: Optional[str]
  test_metrics: Dict[str, float]
  # Node id -> (state, seconds) of the run's executions; state is COMPLETE, CACHED, FAILED, ...
  executions: Dict[str, Tuple[str, float]]
  # The ExampleGen's file counts ('files_seen', 'images_used', 'files_skipped') and the JSON file
  # that lists every skipped file with its reason.
  file_counts: Dict[str, int] = dataclasses.field(default_factory=dict)
  image_summary_path: Optional[str] = None
  # What decided the gate against the last blessed model (blessing_gate.decision_numbers); empty
  # without a baseline.
  comparison: Dict[str, float] = dataclasses.field(default_factory=dict)


def from_run(run: mlmd_runs.Run) -> RunSummary:
  """The summary of ``run``, from that run's own outputs (cached ones included)."""
  examples = run.output('ImageExampleGen', 'Examples')
  blessing = run.output('Evaluator', 'ModelBlessing')
  evaluation = run.output('Evaluator', 'ModelEvaluation')
  pushed = run.output('Pusher', 'PushedModel')
  pushed_to = None
  if pushed is not None and pushed.custom_properties['pushed'].int_value:
    pushed_to = pushed.custom_properties['pushed_destination'].string_value
  return RunSummary(
      run_id=run.run_id,
      blessed=(None if blessing is None or 'blessed' not in blessing.custom_properties
               else bool(blessing.custom_properties['blessed'].int_value)),
      pushed_to=pushed_to,
      test_metrics=tfma_results.overall_metrics(evaluation.uri) if evaluation else {},
      executions=run.node_states(),
      file_counts={} if examples is None else {
          key: examples.custom_properties[key].int_value
          for key in FILE_COUNTS if key in examples.custom_properties},
      image_summary_path=os.path.join(examples.uri, SUMMARY_FILE) if examples else None,
      comparison=blessing_gate.decision_numbers(evaluation.uri) if evaluation else {})


def summarize(metadata_path: str, run_id: Optional[str] = None) -> RunSummary:
  """The summary of the run ``run_id`` (the newest run when None) in the store at
  ``metadata_path``."""
  return from_run(mlmd_runs.find_run(mlmd_runs.open_store(metadata_path), run_id))


def trainer_config(run: mlmd_runs.Run) -> Dict[str, object]:
  """The Trainer's custom_config (class names and hyperparameters) of this run's Trainer."""
  trainer = run.executions.get('Trainer')
  if trainer is None or 'custom_config' not in trainer.custom_properties:
    return {}
  return json.loads(trainer.custom_properties['custom_config'].string_value or '{}')
