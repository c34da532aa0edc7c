"""Keras' engine is traced as it is (components/modules/keras_tracing.py), our own layers converted."""
import tensorflow as tf
from tensorflow.python.autograph.impl import conversion

from components.modules import model as model_lib  # applies the rule, as the Trainer does


class _Clipped(tf.keras.layers.Layer):
  """A layer of ours with Python control flow on a tensor: only AutoGraph makes it traceable."""

  def call(self, inputs):
    if tf.reduce_max(inputs) > 1.0:
      return tf.clip_by_value(inputs, -1.0, 1.0)
    return inputs


def test_keras_engine_is_not_rewritten():
  assert tf.keras.Model.__module__.startswith('tf_keras')
  assert conversion.is_allowlisted(tf.keras.Model.__call__)
  assert conversion.is_allowlisted(tf.keras.Model.train_step)


def test_our_layers_are_still_converted():
  assert not conversion.is_allowlisted(model_lib.build_model)
  inputs = tf.keras.Input([3])
  model = tf.keras.Model(inputs, _Clipped()(inputs))
  traced = tf.function(lambda x: model(x))
  assert traced(tf.constant([[2.0, -3.0, 0.5]])).numpy().tolist() == [[1.0, -1.0, 0.5]]
