"""ImageSchema: the fixed domains of the image properties on top of SchemaGen's schema."""
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components import image_schema
from components.modules import features


def _inferred_schema() -> schema_pb2.Schema:
  schema = schema_pb2.Schema()
  for name in (features.BRIGHTNESS_KEY, features.CONTRAST_KEY, features.SATURATION_KEY,
               features.ASPECT_RATIO_KEY):
    schema.feature.add(name=name, type=schema_pb2.FLOAT)
  for name in (features.HEIGHT_KEY, features.WIDTH_KEY, features.FILE_SIZE_KEY, features.LABEL_KEY):
    schema.feature.add(name=name, type=schema_pb2.INT)
  return schema


def test_domains_are_added_and_the_rest_is_kept():
  inferred = _inferred_schema()
  curated = image_schema.add_image_domains(inferred)
  domains = {f.name: f for f in curated.feature}
  brightness = domains[features.BRIGHTNESS_KEY].float_domain
  assert (brightness.min, brightness.max) == (0.0, 255.0)
  assert domains[features.SATURATION_KEY].float_domain.max == 1.0
  assert domains[features.ASPECT_RATIO_KEY].float_domain.min == 0.0
  assert not domains[features.ASPECT_RATIO_KEY].float_domain.HasField('max')
  assert domains[features.WIDTH_KEY].int_domain.min == 1
  assert not domains[features.LABEL_KEY].HasField('int_domain')
  assert not inferred.feature[0].HasField('float_domain')  # the input is not changed


def test_a_value_outside_its_domain_is_an_anomaly():
  statistics = statistics_pb2.DatasetFeatureStatisticsList()
  dataset = statistics.datasets.add(num_examples=10)
  for name, low, high in ((features.BRIGHTNESS_KEY, 12.0, 300.0), (features.CONTRAST_KEY, 3.0, 60.0)):
    feature = dataset.features.add(type=statistics_pb2.FeatureNameStatistics.FLOAT)
    feature.path.step.append(name)
    feature.num_stats.min, feature.num_stats.max = low, high
    feature.num_stats.common_stats.num_non_missing = 10
    feature.num_stats.common_stats.min_num_values = feature.num_stats.common_stats.max_num_values = 1
  schema = schema_pb2.Schema()
  for name in (features.BRIGHTNESS_KEY, features.CONTRAST_KEY):
    schema.feature.add(name=name, type=schema_pb2.FLOAT)
  anomalies = tfdv.validate_statistics(statistics, image_schema.add_image_domains(schema))
  assert set(anomalies.anomaly_info) == {features.BRIGHTNESS_KEY}
