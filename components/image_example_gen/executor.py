"""Beam executor of the image ExampleGen: image folders -> train/eval/test tf.Examples, and a summary.

Every file under the data root becomes one tf.Example (``tf_example.py``) with the encoded bytes,
the label id (index of the sorted class folder name), the class name, the path relative to the root
and the image's properties (``image_properties.py``). Splits follow the folders and a hash of each
file's path (``splits.py``). Files that do not decode as an image are skipped, counted and listed in
``image_summary.json`` in the Examples artifact and in the log (``summary.py``); the run fails when
the skipped fraction exceeds ``max_skipped_fraction``. Files outside the class folders are listed
there as ignored.
"""
import json
import os
from typing import Any, Dict

from absl import logging
import apache_beam as beam
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import executor_config
from components.image_example_gen import images_to_examples
from components.image_example_gen import splits
from components.image_example_gen import summary as summary_lib

# Where GenerateExamplesByBeam writes the summary, passed from Do.
_SUMMARY_PATH_KEY = '_image_summary_path'


class Executor(BaseExampleGenExecutor):
  """Reads ``<root>/[<split>/]<class>/<image>`` into train/eval/test splits of tf.Examples."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    raise NotImplementedError('Splits follow the folders; see GenerateExamplesByBeam.')

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]) -> Dict[str, beam.pvalue.PCollection]:
    root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY],
                              input_config)
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    config = executor_config.unpack_custom_config(exec_properties)
    config['split_ratios'] = {s.name: s.hash_buckets for s in output_config.split_config.splits}
    split_names = list(config['split_ratios'])

    results = pipeline | 'ToExamples' >> images_to_examples.ImagesToExamples(
        root, input_config.splits[0].pattern, config, split_names)
    summary_path = exec_properties.get(_SUMMARY_PATH_KEY)
    if summary_path:
      _ = (results[images_to_examples.OUTCOMES]
           | 'Summarise' >> beam.CombineGlobally(summary_lib.SummaryFn(
               config.get('ignored_files', []), splits.split_sources(
                   config['split_folders'], config['test_fraction'], config['split_ratios'])))
           | 'WriteSummary' >> beam.Map(summary_lib.write_json, summary_path))
    return {split: results[split] for split in split_names}

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    summary_path = os.path.join(examples.uri, summary_lib.SUMMARY_FILE)
    self._write_splits(examples, {**exec_properties, _SUMMARY_PATH_KEY: summary_path})
    with tf.io.gfile.GFile(summary_path) as f:
      summary = json.load(f)
    config = executor_config.unpack_custom_config(exec_properties)
    examples.set_string_custom_property('class_names', json.dumps(config['class_names']))
    for key in ('files_seen', 'images_used', 'files_skipped'):
      examples.set_int_custom_property(key, summary[key])
    logging.info('Image ExampleGen: %d files seen, %d used, %d skipped; %s; per split and class: %s',
                 summary['files_seen'], summary['images_used'], summary['files_skipped'],
                 summary_lib.describe_splits(summary), summary['counts'])
    for skipped in summary['skipped']:
      logging.warning('Image ExampleGen skipped %s: %s', skipped['path'], skipped['reason'])
    if summary['ignored']:
      logging.warning('Image ExampleGen ignored %d file(s) outside the class folders: %s',
                      len(summary['ignored']), ', '.join(summary['ignored']))
    summary_lib.check_summary(summary, artifact_utils.decode_split_names(examples.split_names),
                              config['max_skipped_fraction'], summary_path,
                              exec_properties[standard_component_specs.INPUT_BASE_KEY])

  def _write_splits(self, examples: types.Artifact, exec_properties: Dict[str, Any]) -> None:
    """BaseExampleGenExecutor.Do without its shuffle of the written examples.

    TFX reshuffles every example before writing; on the DirectRunner that shuffle holds every
    image of a split in memory at once. The file list is already shuffled before the files are
    read (ImagesToExamples), so the examples are written as they are made, in bounded memory.

    ``_make_beam_pipeline`` is protected, but it is BaseBeamExecutor's extension point, the one
    TFX's own Beam executors call: it applies the pipeline's beam_pipeline_args (the runner, its
    workers). TFX offers no public equivalent. (TFX's Do also calls ``_log_startup``, a debug
    line only; it is left out.)
    """
    with self._make_beam_pipeline() as pipeline:
      split_examples_by_name = self.GenerateExamplesByBeam(pipeline, exec_properties)
      examples.split_names = artifact_utils.encode_split_names(list(split_examples_by_name))
      for split, split_examples in split_examples_by_name.items():
        split_uri = artifact_utils.get_split_uri([examples], split)
        _ = (split_examples
             | f'Serialize[{split}]' >> beam.Map(lambda example: example.SerializeToString())
             | f'Write[{split}]' >> beam.io.WriteToTFRecord(
                 os.path.join(split_uri, write_split.DEFAULT_FILE_NAME), file_name_suffix='.gz'))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(
        examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
