"""FeatureExtractor: the frozen pretrained base behind the Transform graph, as a Model artifact that
TFX's BulkInferrer runs over every split (components/modules/frozen_features.py says why).

No TFX component turns a pretrained network into a servable model without training it, so this
small one builds the base with the run's weights and saves serialized raw tf.Examples -> the
base's pooled features of every view. BulkInferrer, a standard component on Beam's RunInference,
then computes them once for the Tuner, the Trainer and the data-quality checks.
"""
from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.proto import bulk_inferrer_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.modules import frozen_features


@component
def FeatureExtractor(  # pylint: disable=invalid-name
    transform_graph: InputArtifact[standard_artifacts.TransformGraph],
    model: OutputArtifact[standard_artifacts.Model],
    image_size: Parameter[int],
    alpha: Parameter[float],
    weights: Parameter[str],
    rotation_factor: Parameter[float],
    module_fingerprint: Parameter[str],  # pylint: disable=unused-argument  # TFX's cache key
) -> None:
  """Saves the extractor in ``model``'s serving folder, where BulkInferrer looks."""
  export_dir = path_utils.serving_model_dir(model.uri)
  frozen_features.export_extractor(transform_graph.uri, export_dir, image_size, alpha, weights,
                                   rotation_factor)
  logging.info('FeatureExtractor: MobileNetV2 alpha %s at %d px (%s), %d views, saved to %s',
               alpha, image_size, weights,
               len(frozen_features.augmented_views(rotation_factor)), export_dir)


def bulk_inferrer_specs():
  """BulkInferrer's (model_spec, output_example_spec): the extractor's signature, and its output
  appended to every example as ``frozen_features.FEATURES_KEY``."""
  return (bulk_inferrer_pb2.ModelSpec(model_signature_name=['serving_default']),
          bulk_inferrer_pb2.OutputExampleSpec(output_columns_spec=[
              bulk_inferrer_pb2.OutputColumnsSpec(predict_output=bulk_inferrer_pb2.PredictOutput(
                  output_columns=[bulk_inferrer_pb2.PredictOutputCol(
                      output_key=frozen_features.FEATURES_KEY,
                      output_column=frozen_features.FEATURES_KEY)]))]))
