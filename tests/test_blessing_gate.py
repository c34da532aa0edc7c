"""The blessing gate against the last blessed model: the paired test's numbers and TFMA's verdict."""
import numpy as np
import pytest
import scipy.stats
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import metric_specs
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.utils import config_util

from components import paired_accuracy
from pipeline import blessing_gate
from pipeline import configs
from pipeline.pipeline import make_eval_config

TEST_IMAGES = 224


@pytest.mark.parametrize('wins, losses', [(0, 0), (0, 5), (5, 0), (3, 3), (1, 8), (40, 61)])
def test_p_value_is_the_exact_one_sided_mcnemar_test(wins, losses):
  expected = (scipy.stats.binomtest(losses, wins + losses, 0.5, alternative='greater').pvalue
              if wins + losses else 1.0)
  assert paired_accuracy.worse_p_value(wins, losses) == pytest.approx(expected, rel=1e-12)


def _predictions(labels, wrong):
  """One-hot-ish probabilities of a model that is wrong exactly on the indices ``wrong``."""
  predicted = labels.copy()
  predicted[list(wrong)] = 1 - predicted[list(wrong)]
  return np.stack([1 - predicted, predicted], axis=1) * 0.8 + 0.1


def _verdict(gate, baseline_wrong, candidate_wrong, minimum=0.5, eval_config=None):
  """TFMA's validation of the candidate: its eval config (``eval_config``, by default the
  pipeline's with an accuracy gate at ``minimum``; with a baseline, as TFX's Evaluator completes
  it), the paired metric computed by its own combiner, accuracy, balanced accuracy and their
  diffs."""
  config = config_util.update_eval_config_with_defaults(
      eval_config or make_eval_config('accuracy', minimum, 2, gate, 0.05), has_baseline=True)
  labels = np.arange(TEST_IMAGES) % 2
  predictions = {'baseline': _predictions(labels, baseline_wrong),
                 'candidate': _predictions(labels, candidate_wrong)}
  right = {name: np.argmax(p, axis=1) == labels for name, p in predictions.items()}
  metrics = {}
  for metric, of_model in (
      ('sparse_categorical_accuracy', lambda name: float(np.mean(right[name]))),
      ('balanced_accuracy',
       lambda name: float(np.mean([np.mean(right[name][labels == c]) for c in (0, 1)])))):
    key = metric_types.MetricKey(name=metric, model_name='candidate', example_weighted=False)
    metrics[key] = of_model('candidate')
    metrics[key.make_diff_key()] = of_model('candidate') - of_model('baseline')
  paired = [c for c in metric_specs.to_computations(config.metrics_specs, config)
            if isinstance(getattr(c, 'combiner', None), paired_accuracy._PairedCountsCombiner)]
  assert len(paired) == (gate == blessing_gate.PAIRED)
  for computation in paired:
    combiner = computation.combiner
    counts = combiner.create_accumulator()
    for i, label in enumerate(labels):
      counts = combiner.add_input(counts, metric_types.StandardMetricInputs(
          labels=np.array([label]), predictions={m: p[i] for m, p in predictions.items()}))
    metrics.update(combiner.extract_output(counts))
  result = metrics_validator.validate_metrics(((), metrics), config)
  return result.validation_ok, {k.name: v for k, v in metrics.items() if k.is_diff}


def test_one_image_decides_the_old_gate_but_not_the_paired_one():
  # The candidate loses one test image the baseline gets right and wins none.
  assert not _verdict(blessing_gate.NOT_LOWER, [0, 1], [0, 1, 2])[0]
  blessed, numbers = _verdict(blessing_gate.PAIRED, [0, 1], [0, 1, 2])
  assert blessed and numbers['candidate_losses'] == 1 and numbers['candidate_wins'] == 0
  assert numbers['paired_worse_p_value'] == 0.5


def test_a_significantly_worse_model_is_refused():
  # 8 losses against 1 win: p = 10/512 < 0.05, although accuracy drops by 7 images only.
  blessed, numbers = _verdict(blessing_gate.PAIRED, [0], list(range(1, 9)))
  assert not blessed
  assert (numbers['candidate_losses'], numbers['candidate_wins']) == (8, 1)
  assert numbers['paired_worse_p_value'] == pytest.approx(10 / 512)


@pytest.mark.parametrize('wins, losses, p_value, blessed', [
    (1, 7, 9 / 256, False),  # 0.035: below 0.05 by less than half of it
    (3, 10, 0.0461, False),  # just below
    (2, 8, 0.0547, True),  # just above
    (1, 6, 8 / 128, True),
])
def test_refused_exactly_when_p_is_below_the_significance(wins, losses, p_value, blessed):
  """The paired gate's threshold is the significance itself (0.05 here), not a fraction or a
  multiple of it: p-values on both sides of it, close to it."""
  verdict, numbers = _verdict(blessing_gate.PAIRED, list(range(wins)),
                              list(range(wins, wins + losses)))
  assert (numbers['candidate_wins'], numbers['candidate_losses']) == (wins, losses)
  assert numbers['paired_worse_p_value'] == pytest.approx(p_value, abs=1e-4)
  assert verdict == blessed


def _evaluator_eval_config(tmp_path, *flags):
  """The Evaluator's eval config in the pipeline that local_runner builds from ``flags``."""
  import local_runner  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  config = local_runner.config_from_args(local_runner.build_parser().parse_args(
      ['--pipeline-root', str(tmp_path / 'root'), '--serving-dir', str(tmp_path / 'serving'),
       *flags]))
  evaluator = next(c for c in create_pipeline(config).components if c.id == 'Evaluator')
  return json_format.Parse(evaluator.exec_properties['eval_config'], tfma.EvalConfig())


def test_the_significance_flag_is_the_evaluators_threshold(tmp_path):
  """--blessing-significance from the command line to the threshold TFMA checks in the
  Evaluator: a candidate with 7 losses and 1 win (p = 0.035) is refused at the default 0.05 and
  blessed at 0.01."""
  baseline_wrong, candidate_wrong = [0], list(range(1, 8))
  blessed, numbers = _verdict(blessing_gate.PAIRED, baseline_wrong, candidate_wrong,
                              eval_config=_evaluator_eval_config(tmp_path))
  assert numbers['paired_worse_p_value'] == pytest.approx(9 / 256) and not blessed
  strict = _evaluator_eval_config(tmp_path, '--blessing-significance', '0.01')
  assert _verdict(blessing_gate.PAIRED, baseline_wrong, candidate_wrong, eval_config=strict)[0]


def test_churn_that_cancels_out_is_blessed_by_both():
  # The two models disagree on 20 images, 10 each way: equally good.
  baseline_wrong, candidate_wrong = list(range(10)), list(range(10, 20))
  assert _verdict(blessing_gate.NOT_LOWER, baseline_wrong, candidate_wrong)[0]
  assert _verdict(blessing_gate.PAIRED, baseline_wrong, candidate_wrong)[0]


def test_the_absolute_threshold_still_applies():
  assert not _verdict(blessing_gate.PAIRED, [], [], minimum=1.01)[0]


def test_without_a_baseline_there_is_nothing_to_compare():
  config = config_util.update_eval_config_with_defaults(
      make_eval_config('accuracy', 0.5, 2, blessing_gate.PAIRED, 0.05), has_baseline=False,
      rubber_stamp=True)  # as TFX's Evaluator does on the first run
  thresholds = metric_specs.metric_thresholds_from_metrics_specs(config.metrics_specs, config)
  assert [k.name for k in thresholds] == ['sparse_categorical_accuracy']
  assert not any(isinstance(getattr(c, 'combiner', None), paired_accuracy._PairedCountsCombiner)
                 for c in metric_specs.to_computations(config.metrics_specs, config))


def test_the_default_gate_is_halfway_from_chance_for_any_number_of_classes():
  config = configs.PipelineConfig('d', 'p', 's')
  assert config.gate_metric == 'balanced_accuracy'
  assert [config.gate_minimum(n) for n in (2, 5, 10)] == [0.75, 0.6, 0.55]
  assert configs.PipelineConfig('d', 'p', 's', gate_threshold=0.9).gate_minimum(5) == 0.9


def _three_class_evaluation(tmp_path, labels, predicted, gate_metric, minimum):
  """A real TFMA run (as the Evaluator's, without a model: the predictions ride in the examples)
  of the pipeline's eval config on a 3-class test split."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  tmp_path.mkdir(exist_ok=True)
  data = str(tmp_path / 'examples.tfrecord')
  with tf.io.TFRecordWriter(data) as writer:
    for label, guess in zip(labels, predicted):
      probabilities = np.full(3, 0.1)
      probabilities[guess] = 0.8
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
          features.PROBABILITIES_OUTPUT: tf.train.Feature(
              float_list=tf.train.FloatList(value=probabilities))})).SerializeToString())
  config = make_eval_config(gate_metric, minimum, 3, blessing_gate.PAIRED, 0.05)
  config.model_specs[0].ClearField('signature_name')  # no model: TFMA reads the predictions
  config.model_specs[0].ClearField('model_type')
  # A first model: nothing to compare with (the Evaluator drops the comparison the same way).
  metrics = config.metrics_specs[0].metrics
  paired = [m for m in metrics if m.class_name == paired_accuracy.PairedAccuracyTest.__name__]
  metrics.remove(paired[0])
  output = str(tmp_path / 'evaluation')
  tfma.run_model_analysis(eval_config=config, data_location=data, output_path=output)
  return output


def test_the_gate_is_on_balanced_accuracy_of_n_classes(tmp_path):
  """90 images of class 0, 5 each of classes 1 and 2; a model that always says 0 has accuracy
  0.9 and balanced accuracy 1/3: refused at the default threshold of three classes (2/3)."""
  from run_results import tfma_results  # pylint: disable=g-import-not-at-top
  labels = [0] * 90 + [1] * 5 + [2] * 5
  output = _three_class_evaluation(tmp_path, labels, [0] * 100, 'balanced_accuracy', 2 / 3)
  overall = tfma_results.overall_metrics(output)
  assert overall['sparse_categorical_accuracy'] == pytest.approx(0.9)
  assert overall['balanced_accuracy'] == pytest.approx(1 / 3)
  assert overall['macro_f1'] == pytest.approx((2 * 0.9 / 1.9) / 3)
  assert tfma_results.failed_metrics(output) == [('balanced_accuracy', False)]
  # Per class: recall from the arg-max classes, and each class's slice accuracy is its recall.
  per_class = tfma_results.per_class_metrics(output, 3)
  assert [per_class[c]['recall'] for c in range(3)] == [1.0, 0.0, 0.0]
  assert tfma_results.sliced_metrics(output)['label=0']['balanced_accuracy'] == 1.0
  # The same predictions pass an accuracy gate of 0.85: the metric the gate reads is the flag's.
  output = _three_class_evaluation(tmp_path / 'accuracy', labels, [0] * 100, 'accuracy', 0.85)
  assert tfma.load_validation_result(output).validation_ok


def test_a_good_model_of_n_classes_is_blessed_and_only_the_whole_split_is_gated(tmp_path):
  """Right on every image but 4 of class 2 (recall 0.2 there): balanced accuracy 0.73 passes the
  default gate of three classes, though that class's own slice is below it."""
  from run_results import tfma_results  # pylint: disable=g-import-not-at-top
  labels = [0] * 90 + [1] * 5 + [2] * 5
  predicted = labels[:96] + [0] * 4
  output = _three_class_evaluation(tmp_path, labels, predicted, 'balanced_accuracy', 2 / 3)
  assert tfma_results.overall_metrics(output)['balanced_accuracy'] == pytest.approx(
      (1 + 1 + 0.2) / 3)
  assert tfma.load_validation_result(output).validation_ok


def test_flags():
  import local_runner  # pylint: disable=g-import-not-at-top
  parse = local_runner.build_parser().parse_args
  config = local_runner.config_from_args(parse([]))
  assert (config.blessing_gate, config.blessing_significance) == ('paired', 0.05)
  config = local_runner.config_from_args(
      parse(['--blessing-gate', 'not-lower', '--blessing-significance', '0.01']))
  assert (config.blessing_gate, config.blessing_significance) == ('not-lower', 0.01)
  for value in ('0', '1', '1.5'):
    with pytest.raises(configs.ConfigError, match='--blessing-significance: .* not a significance'):
      local_runner.config_from_args(parse(['--blessing-significance', value]))


def test_tfma_computes_and_checks_the_paired_metric(saved_model_dir, real_images, tmp_path):
  """A real TFMA evaluation of two models on serialized examples, as the Evaluator runs it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from components.modules import features  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'examples.tfrecord')
  with tf.io.TFRecordWriter(data) as writer:
    for label, name in enumerate(('cats', 'dogs')):
      for path in real_images[name]:
        writer.write(tf.train.Example(features=tf.train.Features(feature={
            features.IMAGE_KEY: tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[open(path, 'rb').read()])),
            features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        })).SerializeToString())
  config = config_util.update_eval_config_with_defaults(
      make_eval_config('balanced_accuracy', 0.0, 2, blessing_gate.PAIRED, 0.05), has_baseline=True)
  models = [tfma.default_eval_shared_model(saved_model_dir, eval_config=config, model_name=name)
            for name in (tfma.CANDIDATE_KEY, tfma.BASELINE_KEY)]
  output = str(tmp_path / 'evaluation')
  tfma.run_model_analysis(eval_shared_model=models, eval_config=config, data_location=data,
                          output_path=output)
  overall = {k.key.name: k.value.double_value.value for metrics in tfma.load_metrics(output)
             if not metrics.slice_key.single_slice_keys
             for k in metrics.metric_keys_and_values if k.key.model_name == tfma.CANDIDATE_KEY}
  # The same model on both sides: no disagreement, nothing suggests it is worse.
  assert (overall['candidate_wins'], overall['candidate_losses'],
          overall['paired_worse_p_value']) == (0, 0, 1.0)
  assert tfma.load_validation_result(output).validation_ok
  assert blessing_gate.decision_numbers(output) == {
      'candidate_wins': 0, 'candidate_losses': 0, 'paired_worse_p_value': 1.0,
      'accuracy_change': 0.0, 'balanced_accuracy_change': 0.0}
