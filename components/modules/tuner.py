"""Tuner module (``tuner_fn``): the frozen base's head, its learning rate and dropout chosen by
KerasTuner on the base's features, as TFX's penguin example tunes its model.

The features are BulkInferrer's, computed once (frozen_features.py), so a trial costs seconds:
``frozen_features.fit_head`` trains the head until its class-balanced eval loss stops improving,
and that loss is the objective. Bayesian optimisation over the learning rate (log scale) and the
dropout; the Trainer receives the best values as ``fn_args.hyperparameters`` and trains the head
with them. The head is a tf.keras (Keras 2) model, which KerasTuner's own fit loop refuses, so the
trial is ours (``HeadTuner.run_trial``, KerasTuner's documented extension point).
"""
from typing import Any, Dict, Optional

from absl import logging
import keras_tuner
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from components.modules import frozen_features

LEARNING_RATE, DROPOUT = 'learning_rate', 'dropout'
OBJECTIVE = 'val_loss'


def search_space() -> keras_tuner.HyperParameters:
  """Learning rates from the recipe of images (1e-4) to where adam on a linear head diverges."""
  hyperparameters = keras_tuner.HyperParameters()
  hyperparameters.Float(LEARNING_RATE, 1e-4, 3e-2, sampling='log')
  hyperparameters.Choice(DROPOUT, [0.0, 0.2, 0.5])
  return hyperparameters


def chosen(hyperparameters: Optional[Dict[str, Any]], config: Dict[str, Any]) -> Dict[str, float]:
  """{learning_rate, dropout}: the Tuner's best (TFX's ``fn_args.hyperparameters``, a
  KerasTuner config) when it ran, else the config's."""
  values = {LEARNING_RATE: config[LEARNING_RATE], DROPOUT: config[DROPOUT]}
  if hyperparameters:
    values.update(keras_tuner.HyperParameters.from_config(hyperparameters).values)
  return values


class HeadTuner(keras_tuner.BayesianOptimization):
  """Trials that train the head on features (``search(train, eval_, ...)``); its summaries go to
  the log, not to the run's output (TFX's Tuner prints them)."""

  def run_trial(self, trial, train: frozen_features.Features, eval_: frozen_features.Features,
                num_classes: int, epochs: int, class_weight: Optional[Dict[int, float]],
                verbose: int = 0) -> Dict[str, float]:
    del verbose  # KerasTuner's display setting, taken by search
    values = trial.hyperparameters.values
    head = frozen_features.head_model(train[0].shape[-1], num_classes, values[DROPOUT])
    history, _ = frozen_features.fit_head(head, train, eval_, epochs, values[LEARNING_RATE],
                                          class_weight)
    return {OBJECTIVE: min(history[OBJECTIVE])}

  def search_space_summary(self, extended: bool = False) -> None:
    logging.info('Tuner search space: %s', self.oracle.hyperparameters.get_config())

  def results_summary(self, num_trials: int = 10) -> None:
    for trial in self.oracle.get_best_trials(num_trials):
      logging.info('Tuner trial %s: %s = %s, %s', trial.trial_id, OBJECTIVE, trial.score,
                   trial.hyperparameters.values)


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
  """TFX's entry point: the tuner and what its ``search`` trains on."""
  config = fn_args.custom_config  # PipelineConfig.trainer_custom_config
  num_views = len(frozen_features.augmented_views(config['rotation_factor']))
  train = frozen_features.read_features(fn_args.train_files, fn_args.data_accessor, num_views)
  eval_ = frozen_features.read_features(fn_args.eval_files, fn_args.data_accessor, num_views)
  num_classes = len(config['class_names'])
  tuner = HeadTuner(
      hyperparameters=search_space(), objective=keras_tuner.Objective(OBJECTIVE, 'min'),
      max_trials=config['tuner_trials'], seed=0, directory=fn_args.working_dir,
      project_name='head', overwrite=True)
  return TunerFnResult(tuner=tuner, fit_kwargs=dict(
      train=train, eval_=eval_, num_classes=num_classes, epochs=config['epochs'], verbose=0,
      class_weight=frozen_features.class_weight_of(train[1], num_classes, config['class_weights'])))
