"""Beam executor of the image ExampleGen.

Every file under the data root becomes one tf.Example with the encoded bytes, the label id (index of
the sorted class folder name), the class name, the path relative to the root, and the image's height,
width and format. Splits are assigned by folder and, inside a folder, by a hash of the file's relative
path, so the same file always lands in the same split on any machine:

* ``train/``                -> ``train``
* ``validation/``           -> ``test`` for a ``test_fraction`` of the files, ``eval`` for the rest
* class folders only        -> ``train``/``eval``/``test`` by the hash buckets of the output config

Files that do not decode as an image are skipped, counted and listed in ``image_summary.json`` in the
Examples artifact; the run fails when the skipped fraction exceeds ``max_skipped_fraction``.
"""
import collections
import hashlib
import io
import json
import os
import posixpath
from typing import Any, Dict, Iterable, List, NamedTuple, Tuple

from absl import logging
import apache_beam as beam
from apache_beam.io import fileio
from google.protobuf import json_format
from google.protobuf import struct_pb2
from PIL import Image
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import layout as layout_lib
from components.modules import features

TRAIN, EVAL, TEST = 'train', 'eval', 'test'
SUMMARY_FILE = 'image_summary.json'
SKIPPED = 'skipped'
# Beam output tag of the FileOutcome of every file.
OUTCOMES = 'file_outcomes'
# Formats that both Pillow (here) and tf.io.decode_image (in the Transform graph) decode.
SUPPORTED_FORMATS = ('jpeg', 'png', 'gif', 'bmp')
_SUMMARY_PATH_KEY = '_image_summary_path'


class UnreadableImageError(ValueError):
  """A file that is not a decodable image of a supported format."""


class ImageDataError(RuntimeError):
  """The images that were read cannot make a usable data set; the message says why."""


class FileOutcome(NamedTuple):
  """What became of one file: its split, or SKIPPED with the reason."""
  relative_path: str
  class_name: str
  split: str
  reason: str = ''


def inspect_image(data: bytes) -> Tuple[int, int, str]:
  """Returns (height, width, format) of an image that the Transform graph will decode.

  Pillow reads the header (format, size); TensorFlow's own decoder, the one the Transform graph
  runs, decodes the whole image, so whatever passes here also decodes in training and serving.
  Raises UnreadableImageError otherwise.
  """
  if not data:
    raise UnreadableImageError('empty file')
  try:
    with Image.open(io.BytesIO(data)) as image:
      image_format = (image.format or '').lower()
      height, width = image.height, image.width
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f'not a decodable image: {e}') from e
  if image_format not in SUPPORTED_FORMATS:
    raise UnreadableImageError(f'unsupported image format {image_format or "unknown"!r}')
  try:
    tf.io.decode_image(data, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
    raise UnreadableImageError(f'not a decodable image: {e.message.splitlines()[0]}') from e
  return height, width, image_format


def hash_fraction(key: str) -> float:
  """A stable number in [0, 1) for ``key``, the same on every machine and Python version."""
  digest = hashlib.sha256(key.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0**64


def assign_split(relative_path: str, split_folder: str, config: Dict[str, Any]) -> str:
  """Output split of the file at ``relative_path`` (relative to the root) in ``split_folder``."""
  if split_folder == config['train_folder']:
    return TRAIN
  # Hash the path below the split folder so the split does not depend on the folder's name.
  key = relative_path[len(split_folder) + 1:] if split_folder else relative_path
  fraction = hash_fraction(key)
  if split_folder:
    return TEST if fraction < config['test_fraction'] else EVAL
  total = sum(config['split_ratios'].values())
  upper = 0.0
  for split, ratio in config['split_ratios'].items():
    upper += ratio / total
    if fraction < upper:
      return split
  return split


def make_example(data: bytes, label: int, class_name: str, relative_path: str,
                 height: int, width: int, image_format: str) -> tf.train.Example:

  def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: _bytes(data),
      features.LABEL_KEY: _int(label),
      features.LABEL_NAME_KEY: _bytes(class_name.encode('utf-8')),
      features.FILENAME_KEY: _bytes(relative_path.encode('utf-8')),
      features.HEIGHT_KEY: _int(height),
      features.WIDTH_KEY: _int(width),
      features.FORMAT_KEY: _bytes(image_format.encode('utf-8')),
  }))


class _FileToExample(beam.DoFn):
  """ReadableFile -> tagged (split) tf.Example, and a FileOutcome for the summary."""

  def __init__(self, root: str, config: Dict[str, Any]):
    self._root = root.rstrip('/')
    self._config = config
    self._label_of = {name: i for i, name in enumerate(config['class_names'])}

  def process(self, readable_file: fileio.ReadableFile) -> Iterable[Any]:
    relative_path = posixpath.relpath(readable_file.metadata.path.replace(os.sep, '/'),
                                      self._root.replace(os.sep, '/'))
    *folders, file_name = relative_path.split('/')
    # Hidden files (.DS_Store, editor backups) are not part of the data set.
    if not file_name.startswith('.') and not any(f.startswith('.') for f in folders):
      yield from self._convert(readable_file, relative_path, folders)

  def _convert(self, readable_file: fileio.ReadableFile, relative_path: str,
               folders: List[str]) -> Iterable[Any]:
    split_folder = folders[0] if len(folders) == 2 else ''
    class_name = folders[-1]
    beam.metrics.Metrics.counter('image_example_gen', 'files_seen').inc()
    try:
      if class_name not in self._label_of:
        raise UnreadableImageError(f'class folder {class_name!r} is not one of the training classes')
      data = readable_file.read()
      height, width, image_format = inspect_image(data)
    except UnreadableImageError as e:
      beam.metrics.Metrics.counter('image_example_gen', 'files_skipped').inc()
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, SKIPPED, str(e)))
    else:
      split = assign_split(relative_path, split_folder, self._config)
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, split))
      yield beam.pvalue.TaggedOutput(split, make_example(
          data, self._label_of[class_name], class_name, relative_path, height, width, image_format))


class _SummaryFn(beam.CombineFn):
  """Counts per split and class, and lists every skipped file with its reason."""

  def create_accumulator(self):
    return collections.Counter(), []

  def add_input(self, accumulator, outcome: FileOutcome):
    counts, skipped = accumulator
    counts[(outcome.split, outcome.class_name)] += 1
    if outcome.split == SKIPPED:
      skipped.append({'path': outcome.relative_path, 'reason': outcome.reason})
    return accumulator

  def merge_accumulators(self, accumulators):
    counts, skipped = collections.Counter(), []
    for c, s in accumulators:
      counts.update(c)
      skipped.extend(s)
    return counts, skipped

  def extract_output(self, accumulator) -> Dict[str, Any]:
    counts, skipped = accumulator
    per_split = collections.defaultdict(dict)
    for (split, class_name), n in sorted(counts.items()):
      per_split[split][class_name] = n
    used = sum(n for (split, _), n in counts.items() if split != SKIPPED)
    return {
        'files_seen': used + len(skipped),
        'images_used': used,
        'files_skipped': len(skipped),
        'counts': {split: per_split[split] for split in sorted(per_split) if split != SKIPPED},
        'skipped': sorted(skipped, key=lambda s: s['path']),
    }


def pack_custom_config(config: Dict[str, Any]) -> example_gen_pb2.CustomConfig:
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


def _write_json(value: Dict[str, Any], path: str) -> None:
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(value, f, indent=1, sort_keys=True)


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
    config = unpack_custom_config(exec_properties)
    config['split_ratios'] = {s.name: s.hash_buckets for s in output_config.split_config.splits}
    split_names = list(config['split_ratios'])

    results = (
        pipeline
        | 'MatchFiles' >> fileio.MatchFiles(os.path.join(root, input_config.splits[0].pattern))
        | 'Reshuffle' >> beam.Reshuffle()
        | 'ReadMatches' >> fileio.ReadMatches()
        | 'ToExample' >> beam.ParDo(_FileToExample(root, config)).with_outputs(OUTCOMES, *split_names))
    summary_path = exec_properties.get(_SUMMARY_PATH_KEY)
    if summary_path:
      _ = (results[OUTCOMES]
           | 'Summarise' >> beam.CombineGlobally(_SummaryFn())
           | 'WriteSummary' >> beam.Map(_write_json, summary_path))
    return {split: results[split] for split in split_names}

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    summary_path = os.path.join(examples.uri, SUMMARY_FILE)
    super().Do(input_dict, output_dict, {**exec_properties, _SUMMARY_PATH_KEY: summary_path})
    with tf.io.gfile.GFile(summary_path) as f:
      summary = json.load(f)
    config = unpack_custom_config(exec_properties)
    examples.set_string_custom_property('class_names', json.dumps(config['class_names']))
    for key in ('files_seen', 'images_used', 'files_skipped'):
      examples.set_int_custom_property(key, summary[key])
    logging.info('Image ExampleGen: %d files seen, %d used, %d skipped; per split: %s',
                 summary['files_seen'], summary['images_used'], summary['files_skipped'],
                 summary['counts'])
    check_summary(summary, artifact_utils.decode_split_names(examples.split_names),
                  config['max_skipped_fraction'], summary_path)


def check_summary(summary: Dict[str, Any], split_names: List[str], max_skipped_fraction: float,
                  summary_path: str) -> None:
  """Fails with a readable message when too many files were skipped or a split is empty."""
  seen = summary['files_seen']
  if seen and summary['files_skipped'] / seen > max_skipped_fraction:
    examples = ', '.join(f"{s['path']} ({s['reason']})" for s in summary['skipped'][:5])
    raise ImageDataError(
        f"{summary['files_skipped']} of {seen} files are not usable images "
        f"({summary['files_skipped'] / seen:.1%} > the allowed {max_skipped_fraction:.1%}), "
        f'e.g. {examples}; the full list is in {summary_path}. Remove or fix them, or raise '
        '--max-skipped-fraction.')
  empty = [split for split in split_names if not summary['counts'].get(split)]
  if empty:
    raise ImageDataError(f'split(s) {empty} received no images (counts: {summary["counts"]}); '
                         'add images or change --test-fraction / the split ratios.')
