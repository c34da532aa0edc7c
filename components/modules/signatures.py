"""Serving signatures of the pushed SavedModel; both run the Transform graph, then the model.

* ``serving_default``: serialized tf.Examples (TFMA, TF Serving, BulkInferrer).
* ``serving_image_bytes``: a 1-D string tensor ``image_bytes`` of encoded JPEG/PNG files.

Both return ``probabilities`` float32 [N, C], ``class_ids`` int64 [N] and ``class_names`` string [N].
A request with an image over the Transform graph's pixel or byte budget fails whole, before
anything is decoded, with an InvalidArgumentError that names it: 'image 3 of the request: too
large: 20000×20000 pixels (limit 200000000)' (image_budget; the model keeps the budget as
variables). ``save_served`` writes them (and ``embedding``'s) as a plain SavedModel.
"""
from typing import Dict, Sequence

import tensorflow as tf
import tensorflow_transform as tft

from components.modules import embedding
from components.modules import features
from components.modules import image_budget


def make_serving_signatures(model: tf.keras.Model,
                            tft_output: tft.TFTransformOutput,
                            class_names: Sequence[str]) -> Dict[str, tf.types.experimental.ConcreteFunction]:
  # Attached to the model so the Transform graph and its assets are saved with it.
  model.tft_layer = tft_output.transform_features_layer()
  budget = image_budget.of_transform_graph(tft_output.transform_savedmodel_dir)
  if budget is not None:  # a Transform graph made before the budget has none to enforce
    image_budget.attach(model, budget)
  model.class_names = tf.Variable(list(class_names), trainable=False, name='class_names')
  image_feature_spec = {features.IMAGE_KEY: tft_output.raw_feature_spec()[features.IMAGE_KEY]}

  def predict(raw_features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    _, logits = embedding.embedding_and_logits_of_raw_images(model)(raw_features[features.IMAGE_KEY])
    class_ids = tf.argmax(logits, axis=-1)
    return {
        features.PROBABILITIES_OUTPUT: tf.nn.softmax(logits),
        features.CLASS_IDS_OUTPUT: class_ids,
        features.CLASS_NAMES_OUTPUT: tf.gather(model.class_names, class_ids),
    }

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_tf_examples(serialized_examples):
    return predict(tf.io.parse_example(serialized_examples, image_feature_spec))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=features.IMAGE_BYTES_INPUT)])
  def serve_image_bytes(image_bytes):
    return predict({features.IMAGE_KEY: tf.reshape(image_bytes, [-1, 1])})

  return {
      'serving_default': serve_tf_examples.get_concrete_function(),
      features.IMAGE_BYTES_SIGNATURE: serve_image_bytes.get_concrete_function(),
  }


def save_served(model: tf.keras.Model, export_dir: str,
                served_signatures: Dict[str, tf.types.experimental.ConcreteFunction]) -> None:
  """Saves the signatures and what they read: the model's variables and the objects the signature
  makers attached to it (Transform layer, class names, image budget, embedding baseline).

  A plain SavedModel, not Keras' format: Keras' per-layer metadata doubled the export (~5 s against
  ~2.4 s for the sample's MobileNetV2) and added ~0.5 s to every load (Evaluator, TFLiteCheck,
  run report, predict.py, validate.py), and nothing loads the served model back into Keras.
  """
  served = tf.Module()
  served.model_variables = model.variables
  for name in (('tft_layer', 'class_names') + image_budget.SAVED_ATTRIBUTES
               + embedding.SAVED_ATTRIBUTES):
    if hasattr(model, name):
      setattr(served, name, getattr(model, name))
  tf.saved_model.save(served, export_dir, signatures=served_signatures)
