"""A TFMA metric that compares the candidate with the baseline model on the same test examples.

The Evaluator runs both models on every test example. Of the examples on which they disagree
(exactly one of the two is right), ``candidate_losses`` are those only the baseline gets right and
``candidate_wins`` those only the candidate gets right. If the two models were equally accurate,
each disagreement would be a loss with probability 1/2 (McNemar's test, exact form), so

    paired_worse_p_value = P(Binomial(wins + losses, 1/2) >= losses)

is the chance of at least this many losses between equally good models: small when the candidate
is worse than chance explains. The blessing gate (pipeline/blessing_gate.py) refuses a candidate
whose p-value is below the significance level: an equally good model is refused at most that
often, whatever the size of the test split, and agreements (most examples) cost nothing.

The values are keyed as diff metrics of the candidate (``is_diff``), like TFMA's own
model-comparison metrics (``ModelCosineSimilarity``), so TFMA checks them with a change threshold,
which it drops when there is no baseline yet.
"""
import dataclasses
import math
from typing import Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

P_VALUE = 'paired_worse_p_value'
WINS = 'candidate_wins'
LOSSES = 'candidate_losses'


def worse_p_value(wins: int, losses: int) -> float:
  """One-sided exact McNemar p-value: P(X >= losses) for X ~ Binomial(wins + losses, 1/2)."""
  disagreements = wins + losses
  if disagreements == 0:
    return 1.0
  tail = sum(math.comb(disagreements, k) for k in range(losses, disagreements + 1))
  return tail / 2**disagreements


@dataclasses.dataclass
class _Counts:
  wins: int = 0
  losses: int = 0


class PairedAccuracyTest(metric_types.Metric):
  """Wins, losses and the paired p-value of the candidate against the baseline (see module doc)."""

  def __init__(self, name: str = P_VALUE):
    super().__init__(self._computations, name=name)

  @property
  def compute_confidence_interval(self) -> bool:
    return False  # a test statistic, not an estimate to bootstrap

  def _computations(self, name: str, eval_config: config_pb2.EvalConfig,
                    model_names: Iterable[str], output_names: Optional[Iterable[str]] = ('',),
                    example_weighted: bool = False) -> metric_types.MetricComputations:
    baseline_spec = model_util.get_baseline_model_spec(eval_config)
    if not baseline_spec:
      return []  # nothing to compare with (the first blessed model)
    computations = []
    for model_name in model_names:
      if model_name == baseline_spec.name:
        continue
      for output_name in output_names or ('',):
        keys = [metric_types.MetricKey(name=metric, model_name=model_name, output_name=output_name,
                                       is_diff=True, example_weighted=example_weighted)
                for metric in (name, WINS, LOSSES)]
        computations.append(metric_types.MetricComputation(
            keys=keys, preprocessors=None,
            combiner=_PairedCountsCombiner(keys, eval_config, baseline_spec.name, model_name,
                                           output_name)))
    return computations


class _PairedCountsCombiner(beam.CombineFn):
  """Counts the candidate's wins and losses on the examples where exactly one model is right."""

  def __init__(self, keys: List[metric_types.MetricKey], eval_config: config_pb2.EvalConfig,
               baseline_model_name: str, model_name: str, output_name: str):
    self._p_value_key, self._wins_key, self._losses_key = keys
    self._eval_config = eval_config
    self._model_names = (baseline_model_name, model_name)
    self._output_name = output_name

  def _is_right(self, element: metric_types.StandardMetricInputs, model_name: str) -> bool:
    label, prediction, _ = next(metric_util.to_label_prediction_example_weight(
        inputs=element, eval_config=self._eval_config, model_name=model_name,
        output_name=self._output_name, flatten=False, allow_none=False))
    return int(np.argmax(prediction)) == int(np.asarray(label).reshape(-1)[0])

  def create_accumulator(self) -> _Counts:
    return _Counts()

  def add_input(self, counts: _Counts, element: metric_types.StandardMetricInputs) -> _Counts:
    baseline_right, candidate_right = (self._is_right(element, m) for m in self._model_names)
    counts.wins += int(candidate_right and not baseline_right)
    counts.losses += int(baseline_right and not candidate_right)
    return counts

  def merge_accumulators(self, accumulators: Iterable[_Counts]) -> _Counts:
    merged = _Counts()
    for counts in accumulators:
      merged.wins += counts.wins
      merged.losses += counts.losses
    return merged

  def extract_output(self, counts: _Counts) -> Dict[metric_types.MetricKey, float]:
    return {self._p_value_key: worse_p_value(counts.wins, counts.losses),
            self._wins_key: counts.wins, self._losses_key: counts.losses}
