"""The tutorial's four models: the transfer model (frozen pretrained base, head shape, weight
loading, fine-tuning, augmentation), the three small CNNs, and the --model flag that picks one."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

import local_runner
from components.modules import features
from components.modules import model as model_lib
from components.modules import model_variants
from pipeline import configs
from tests.trees import SAMPLE_DATA

CNNS = (model_variants.SMALL_CNN, model_variants.CNN_AUGMENTED, model_variants.CNN_AUGMENTED_SCALED)


def _base(model):
  return next(layer for layer in model.layers if isinstance(layer, tf.keras.Model))


def test_pretrained_base_is_frozen_and_loaded_from_file(weights_035):
  model = model_lib.build_model(num_classes=2, image_size=96, alpha=0.35, weights=weights_035,
                                dropout=0.2, learning_rate=1e-4,
                                model=model_variants.MOBILENET_V2)
  assert not _base(model).trainable
  assert [w.name.split('/')[0] for w in model.trainable_weights] == ['logits', 'logits']
  # A fixed start for the head (benchmarks/head_seeds.py: random starts moved test accuracy).
  assert not model.get_layer('logits').kernel.numpy().any()
  assert model(tf.zeros([3, 96, 96, 3])).shape == (3, 2)
  first_conv = _base(model).get_layer('Conv1').kernel.numpy()
  with h5py.File(weights_035, 'r') as f:
    stored = f['Conv1']['Conv1']['kernel:0'][()]
  np.testing.assert_array_equal(first_conv, stored)


def test_random_base_is_trained_with_the_head():
  model = model_lib.build_model(num_classes=3, image_size=32, alpha=0.35, weights='none',
                                dropout=0.0, learning_rate=1e-3, model=model_variants.MOBILENET_V2)
  assert _base(model).trainable
  assert model(tf.zeros([1, 32, 32, 3])).shape == (1, 3)


def test_training_step_is_traced_once():
  # Optimizer slots made inside the first step make tf.function trace the step twice (~4 s for
  # the sample's MobileNetV2); compile_model makes them first.
  model = model_lib.build_model(num_classes=2, image_size=32, alpha=0.35, weights='none',
                                dropout=0.0, learning_rate=1e-3, model=model_variants.SMALL_CNN)
  images, labels = tf.zeros([8, 32, 32, 3]), tf.constant([0, 1] * 4)
  model.fit(images, labels, batch_size=4, epochs=2, verbose=0)
  assert model.train_function.experimental_get_tracing_count() == 1


def test_missing_weights_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist.*imagenet'):
    model_lib.resolve_weights(str(tmp_path / 'missing.h5'))
  assert model_lib.resolve_weights('imagenet') == 'imagenet'
  assert model_lib.resolve_weights('none') is None


def test_fine_tuning_unfreezes_only_the_top_of_the_base(weights_035):
  model = model_lib.build_model(num_classes=2, image_size=96, alpha=0.35, weights=weights_035,
                                dropout=0.2, learning_rate=1e-4,
                                model=model_variants.MOBILENET_V2)
  model_lib.unfreeze_top_of_base(model, fine_tune_at=100, learning_rate=1e-5)
  layers = _base(model).layers
  assert not any(layer.trainable for layer in layers[:100])
  assert all(layer.trainable for layer in layers[100:])
  assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-5)


def test_augmentation_only_in_training():
  images = tf.random.uniform([4, 32, 32, 3], -1, 1, seed=1)
  augment = model_lib.augmentation(0.2, seed=3)
  np.testing.assert_array_equal(augment(images, training=False).numpy(), images.numpy())
  assert not np.allclose(augment(images, training=True).numpy(), images.numpy())


def _cnn(name, num_classes=2, image_size=32):
  return model_lib.build_model(num_classes=num_classes, image_size=image_size, alpha=1.0,
                               weights='none', dropout=0.2, learning_rate=1e-3, model=name)


def test_registry_has_the_tutorials_four_models_default_mobilenet_v2():
  assert list(model_lib.BUILDERS) == list(model_variants.VARIANTS)
  assert [v.tutorial_number for v in model_variants.VARIANTS.values()] == [1, 2, 3, 4]
  assert configs.PipelineConfig('d', 'p', 's').model == model_variants.MOBILENET_V2
  # Augmentation of the training batches: all but the tutorial's first model.
  assert {name: v.augment for name, v in model_variants.VARIANTS.items()} == {
      'small_cnn': False, 'cnn_augmented': True, 'cnn_augmented_scaled': True,
      'mobilenet_v2': True}


@pytest.mark.parametrize('name', CNNS)
def test_cnn_builds_logits_and_trains_one_step(name):
  model = _cnn(name, num_classes=3)
  assert model.input.name.split(':')[0] == features.TRANSFORMED_IMAGE_KEY
  assert model.input.shape.as_list() == [None, 32, 32, 3]
  assert [l.filters for l in model.layers if isinstance(l, tf.keras.layers.Conv2D)] == [16, 32, 64]
  assert [l.units for l in model.layers if isinstance(l, tf.keras.layers.Dense)] == [512, 3]
  assert model.layers[-1].name == 'logits'
  assert model.layers[-1].activation is tf.keras.activations.linear
  images = tf.random.uniform([4, 32, 32, 3], -1, 1, seed=2)
  assert model(images).shape == (4, 3)
  before = [w.numpy().copy() for w in model.trainable_weights]
  loss = model.train_on_batch(images, tf.constant([0, 1, 2, 0]))[0]
  assert np.isfinite(loss)
  assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


@pytest.mark.parametrize('name, unit_range, dropout_layers', [
    (model_variants.SMALL_CNN, True, 0),
    (model_variants.CNN_AUGMENTED, True, 2),
    (model_variants.CNN_AUGMENTED_SCALED, False, 2),
])
def test_cnn_input_range_and_dropout(name, unit_range, dropout_layers):
  model = _cnn(name)
  rescaling = [l for l in model.layers if isinstance(l, tf.keras.layers.Rescaling)]
  if unit_range:
    # The tutorial's Rescaling(1./255) after the Transform graph's [-1, 1]: -1 -> 0, 1 -> 1.
    assert len(rescaling) == 1 and model.layers[1] is rescaling[0]
    np.testing.assert_allclose(rescaling[0](tf.constant([-1.0, 0.0, 1.0])).numpy(), [0, 0.5, 1])
  else:
    assert not rescaling  # takes the [-1, 1] images as they are
    assert isinstance(model.layers[1], tf.keras.layers.Conv2D)
  dropouts = [l for l in model.layers if isinstance(l, tf.keras.layers.Dropout)]
  assert len(dropouts) == dropout_layers and all(l.rate == 0.2 for l in dropouts)


def test_cnn_serves_through_the_signatures(transform_output, tmp_path):
  from tests import serving_checks  # pylint: disable=g-import-not-at-top
  from tests.conftest import TEST_IMAGE_SIZE  # pylint: disable=g-import-not-at-top
  model = serving_checks.brightness_classifier(model_variants.CNN_AUGMENTED, TEST_IMAGE_SIZE)
  serving_checks.save_with_signatures(model, transform_output, str(tmp_path))
  serving_checks.assert_both_signatures_classify(tf.saved_model.load(str(tmp_path)))


def test_unknown_model_names_fail_clearly(capsys):
  with pytest.raises(ValueError, match="unknown model 'vgg16'; choose one of small_cnn, "
                                       'cnn_augmented, cnn_augmented_scaled, mobilenet_v2'):
    _cnn('vgg16')
  with pytest.raises(SystemExit) as exit_info:
    local_runner.main(['--model', 'vgg16'])
  assert exit_info.value.code == 2
  assert "invalid choice: 'vgg16'" in capsys.readouterr().err


def test_fine_tuning_a_cnn_is_a_clear_error():
  with pytest.raises(ValueError, match='no pretrained base to fine-tune'):
    model_lib.unfreeze_top_of_base(_cnn(model_variants.SMALL_CNN), 100, 1e-5)


def _config(*argv):
  args = local_runner.build_parser().parse_args(
      ['--recipe', 'transfer', '--data-root', SAMPLE_DATA, *argv])
  return local_runner.config_from_args(args)


def test_model_flag_reaches_the_trainer_with_its_learning_rate():
  config = _config('--model', 'cnn_augmented_scaled')
  custom = config.trainer_custom_config(['cats', 'dogs'])
  assert (custom['model'], custom['learning_rate']) == ('cnn_augmented_scaled', 1e-3)
  # The transfer model keeps the recipe's rate; --learning-rate wins for every model.
  default = _config().trainer_custom_config(['cats', 'dogs'])
  assert (default['model'], default['learning_rate']) == ('mobilenet_v2', 1e-3)
  assert _config('--model', 'small_cnn', '--learning-rate', '0.01').learning_rate == 0.01
  assert _config('--model', 'mobilenet_v2', '--fine-tune-epochs', '2').fine_tune_epochs == 2


def test_fine_tune_epochs_with_a_cnn_is_rejected(capsys):
  with pytest.raises(configs.ConfigError, match='--model small_cnn has none'):
    _config('--model', 'small_cnn', '--fine-tune-epochs', '3')
  assert local_runner.main(['--data-root', SAMPLE_DATA, '--model', 'cnn_augmented',
                            '--fine-tune-epochs', '1']) == 2
  assert 'fine-tuning applies to --model mobilenet_v2 only' in capsys.readouterr().err


def test_model_flag_reaches_the_trainer_component(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from pipeline.pipeline import create_pipeline  # pylint: disable=g-import-not-at-top
  config = _config('--model', 'small_cnn', '--pipeline-root', str(tmp_path / 'root'),
                   '--serving-dir', str(tmp_path / 'serving'))
  trainer = next(c for c in create_pipeline(config).components if c.id == 'Trainer')
  custom_config = json.loads(trainer.exec_properties['custom_config'])
  assert (custom_config['model'], custom_config['learning_rate']) == ('small_cnn', 1e-3)
