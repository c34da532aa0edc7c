"""ImageSchema: SchemaGen's inferred schema plus the fixed domains of the image properties.

SchemaGen infers types, shapes and the values of categorical features (class names, formats,
colour modes) from the data, but no numeric ranges. The ranges of the image properties are facts
of how they are computed, not of the data, so they are added here, once, for every run:
brightness and contrast are grey levels, saturation a fraction, sizes positive. ExampleValidator
then reports a value outside them as an anomaly, and Transform, Trainer and validate.py read
the same schema.
"""
import os

from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from components.modules import features

SCHEMA_FILE = 'schema.pbtxt'
# feature -> (min, max); None: unbounded on that side.
FLOAT_DOMAINS = {
    features.BRIGHTNESS_KEY: (0.0, 255.0),
    features.CONTRAST_KEY: (0.0, 127.5),  # the standard deviation of values in [0, 255]
    features.SATURATION_KEY: (0.0, 1.0),
    features.ASPECT_RATIO_KEY: (0.0, None),
}
INT_DOMAINS = {
    features.HEIGHT_KEY: (1, None),
    features.WIDTH_KEY: (1, None),
    features.FILE_SIZE_KEY: (1, None),
}


def add_image_domains(schema: schema_pb2.Schema) -> schema_pb2.Schema:
  """A copy of ``schema`` with the domains above on the features it has."""
  result = schema_pb2.Schema()
  result.CopyFrom(schema)
  for feature in result.feature:
    if feature.name not in FLOAT_DOMAINS and feature.name not in INT_DOMAINS:
      continue
    is_float = feature.name in FLOAT_DOMAINS
    low, high = (FLOAT_DOMAINS if is_float else INT_DOMAINS)[feature.name]
    domain = feature.float_domain if is_float else feature.int_domain  # selects the oneof
    domain.min = low
    if high is not None:
      domain.max = high
  return result


@component
def ImageSchema(  # pylint: disable=invalid-name
    schema: InputArtifact[standard_artifacts.Schema],
    curated_schema: OutputArtifact[standard_artifacts.Schema],
) -> None:
  """SchemaGen's schema with the image properties' domains (see the module docstring)."""
  inferred = io_utils.parse_pbtxt_file(os.path.join(schema.uri, SCHEMA_FILE), schema_pb2.Schema())
  io_utils.write_pbtxt_file(os.path.join(curated_schema.uri, SCHEMA_FILE),
                            add_image_domains(inferred))
