"""Two pipeline runs on the embedded sample, each pushing a model, then a rollback: what the pushed
version folder holds (the TFLite model, its contract, warm-up requests that replay), what
``models.py`` lists, which model ``predict.py`` then uses, and the model cards. About 8 minutes
on 2 CPUs."""
import json
import os

import tensorflow as tf

import local_runner
import models
import predict
from components import atomic_pusher
from components.modules import features
from components.modules import tflite_export
from components.modules import warmup
from components.tflite_check import TFLiteEvaluation
from pipeline import configs
from pipeline import mlmd_runs
from pipeline import model_card
from tests.trees import SAMPLE_DATA


def _assert_pushed_folder_serves(folder: str) -> None:
  """TFLite model and contract beside the SavedModel; the warm-up requests replay through it."""
  assert os.path.isfile(tflite_export.tflite_path(folder))
  with open(os.path.join(folder, tflite_export.TFLITE_DIR, tflite_export.CONTRACT_FILE)) as f:
    assert json.load(f)['class_names'] == ['cats', 'dogs']
  loaded = tf.saved_model.load(folder)
  logs = list(warmup.read(folder))
  assert {log.predict_log.request.model_spec.signature_name for log in logs} == {
      'serving_default', features.IMAGE_BYTES_SIGNATURE}
  for log in logs:
    outputs = warmup.replay(loaded, log)
    assert outputs[features.PROBABILITIES_OUTPUT].shape == (warmup.WARMUP_IMAGES, 2)


def test_two_pushes_a_rollback_and_the_model_predict_uses(tmp_path, capsys):
  root, serving = str(tmp_path / 'pipeline_root'), str(tmp_path / 'serving')
  paths = ['--pipeline-root', root, '--serving-dir', serving]
  assert local_runner.main(paths) == 0
  assert 'model card: ' in capsys.readouterr().out
  assert local_runner.main(paths + ['--epochs', '15']) == 0  # a retrain, as good: pushed too
  capsys.readouterr()
  first, second = atomic_pusher.model_versions(serving)
  _assert_pushed_folder_serves(os.path.join(serving, str(second)))

  store = mlmd_runs.open_store(configs.metadata_path_of(root))
  run_ids = mlmd_runs.run_ids(store)
  for run_id in run_ids:  # the pipeline measured and passed each TFLite model
    evaluation = mlmd_runs.find_run(store, run_id).output('TFLiteCheck', TFLiteEvaluation.TYPE_NAME)
    assert evaluation.custom_properties['accuracy_drop'].double_value <= 0.01
    assert evaluation.custom_properties['example_count'].int_value > 0

  assert models.main(['rollback', str(first)] + paths) == 0
  capsys.readouterr()
  assert models.main(['list'] + paths) == 0
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 3, lines
  third = atomic_pusher.model_versions(serving)[-1]
  assert lines[0].startswith(f'  {first}') and f'run {run_ids[0]}' in lines[0]
  assert lines[1].startswith(f'  {second}') and f'run {run_ids[1]}' in lines[1]
  assert lines[2].startswith(f'* {third}') and f'rollback of {first}' in lines[2]
  assert f'run {run_ids[0]}' in lines[2]  # what made the model it republished

  image = os.path.join(SAMPLE_DATA, 'validation', 'cats')
  assert predict.main([image, '--pipeline-root', root]) == 0
  assert f'model: {os.path.join(serving, str(third))};' in capsys.readouterr().err

  with open(os.path.join(model_card.cards_dir(root), str(first), 'model_card.md')) as f:
    card = f.read()  # written by the first run
  assert f'version {first}' in card and f'pipeline run `{run_ids[0]}`' in card
  assert models.main(['card', str(third)] + paths) == 0
  with open(os.path.join(model_card.cards_dir(root), str(third), 'model_card.md')) as f:
    card = f.read()
  assert f'pipeline run `{run_ids[0]}`' in card and f'from version {first} (rollback)' in card
  assert os.path.isfile(os.path.join(model_card.cards_dir(root), str(third), 'model_card.html'))
