"""Keras' own code traced as it is, not rewritten by AutoGraph: a MobileNetV2 traces 4x faster.

``tf.function`` hands every Python function it calls to AutoGraph, which rewrites its source
(``if``/``for`` on tensors into graph ops) unless a rule says not to. TensorFlow's rules skip the
packages known to be graph-safe, ``keras`` among them: with TensorFlow 2.15 that covered Keras 2.
TFT and TFMA 1.16 need Keras 2, which TensorFlow 2.16 ships as the package ``tf_keras``; no rule
names it, so every ``fit``, ``evaluate`` and ``save`` rewrote the Keras engine's source, layer by
layer: the first epoch of the sample's MobileNetV2 took 44 s instead of 10. This module adds the
rule TensorFlow 2.15 applied to the same code under its old name. Layers we write are still
converted: Keras converts the ``call`` of any layer defined outside its own package
(``base_layer_utils.is_subclassed``).
"""
from tensorflow.python.autograph.core import config as autograph_config

KERAS_PACKAGE = 'tf_keras'


def skip_autograph_of_keras() -> None:
  """Adds a do-not-convert rule for ``tf_keras`` (once)."""
  rules = autograph_config.CONVERSION_RULES
  if not any(rule.matches(KERAS_PACKAGE) for rule in rules):
    autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert(KERAS_PACKAGE),) + rules
