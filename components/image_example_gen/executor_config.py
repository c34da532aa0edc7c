"""The settings the image executor reads, carried in FileBasedExampleGen's CustomConfig proto.

The component packs them at pipeline construction; the executor unpacks them in its container.
``validate.py`` builds the same dictionary to read new data with the executor's Beam transform.
"""
from typing import Any, Dict, Mapping

from google.protobuf import json_format
from google.protobuf import struct_pb2
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen.layout import ImageLayout
from components.modules import image_budget


def executor_settings(layout: ImageLayout, test_fraction: float, max_skipped_fraction: float,
                      budget: image_budget.ImageBudget) -> Dict[str, Any]:
  """What the executor needs besides the split ratios (those travel as the output config's hash
  buckets): the label ids' class names, the split folders (splits.py), the test share, the
  bound on unusable files and the image budget."""
  return {
      'class_names': list(layout.class_names),
      'split_folders': list(layout.split_folders),
      'test_fraction': test_fraction,
      'max_skipped_fraction': max_skipped_fraction,
      'ignored_files': list(layout.ignored_files),
      **image_budget.as_settings(budget),
  }


def pack_custom_config(config: Mapping[str, Any]) -> example_gen_pb2.CustomConfig:
  """The executor's settings as the CustomConfig proto that FileBasedExampleGen carries."""
  custom_config = example_gen_pb2.CustomConfig()
  custom_config.custom_config.Pack(json_format.ParseDict(config, struct_pb2.Struct()))
  return custom_config


def unpack_custom_config(exec_properties: Dict[str, Any]) -> Dict[str, Any]:
  custom_config = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY],
                            custom_config)
  struct = struct_pb2.Struct()
  custom_config.custom_config.Unpack(struct)
  return json_format.MessageToDict(struct)
