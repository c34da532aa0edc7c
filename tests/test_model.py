"""The transfer model: frozen pretrained base, head shape, weight loading, fine-tuning, augmentation."""
import h5py
import numpy as np
import pytest
import tensorflow as tf

from components.modules import model as model_lib


def _base(model):
  return next(layer for layer in model.layers if isinstance(layer, tf.keras.Model))


def test_pretrained_base_is_frozen_and_loaded_from_file(weights_035):
  model = model_lib.build_model(num_classes=2, image_size=96, alpha=0.35, weights=weights_035,
                                dropout=0.2, learning_rate=1e-4)
  assert not _base(model).trainable
  assert [w.name.split('/')[0] for w in model.trainable_weights] == ['logits', 'logits']
  assert model(tf.zeros([3, 96, 96, 3])).shape == (3, 2)
  first_conv = _base(model).get_layer('Conv1').kernel.numpy()
  with h5py.File(weights_035, 'r') as f:
    stored = f['Conv1']['Conv1']['kernel:0'][()]
  np.testing.assert_array_equal(first_conv, stored)


def test_random_base_is_trained_with_the_head():
  model = model_lib.build_model(num_classes=3, image_size=32, alpha=0.35, weights='none',
                                dropout=0.0, learning_rate=1e-3)
  assert _base(model).trainable
  assert model(tf.zeros([1, 32, 32, 3])).shape == (1, 3)


def test_missing_weights_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist.*imagenet'):
    model_lib.resolve_weights(str(tmp_path / 'missing.h5'))
  assert model_lib.resolve_weights('imagenet') == 'imagenet'
  assert model_lib.resolve_weights('none') is None


def test_fine_tuning_unfreezes_only_the_top_of_the_base(weights_035):
  model = model_lib.build_model(num_classes=2, image_size=96, alpha=0.35, weights=weights_035,
                                dropout=0.2, learning_rate=1e-4)
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
