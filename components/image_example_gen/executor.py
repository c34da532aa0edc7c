"""Beam executor of the image ExampleGen.

Every file under the data root becomes one tf.Example with the encoded bytes, the label id (index of
the sorted class folder name), the class name, the path relative to the root, and the image's height,
width and format. Splits are assigned by folder and, inside a folder, by a hash of the file's relative
path, so the same file always lands in the same split on any machine:

* ``train/``                -> ``train``
* ``validation/``           -> ``test`` for a ``test_fraction`` of the files, ``eval`` for the rest
* class folders only        -> ``train``/``eval``/``test`` by the hash buckets of the output config

Files that do not decode as an image are skipped, counted and listed in ``image_summary.json`` in the
Examples artifact and in the log; the run fails when the skipped fraction exceeds
``max_skipped_fraction``. Files outside the class folders are listed there as ignored.
"""
import collections
import hashlib
import io
import json
import os
import posixpath
import re
from typing import Any, Dict, Iterable, List, NamedTuple, Tuple

from absl import logging
import apache_beam as beam
from apache_beam.io import fileio
from google.protobuf import json_format
from google.protobuf import struct_pb2
from PIL import Image
from PIL import ImageStat
import tensorflow as tf
from tfx import types
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import file_tree
from components.image_example_gen import layout as layout_lib
from components.modules import features

TRAIN, EVAL, TEST = 'train', 'eval', 'test'
SUMMARY_FILE = 'image_summary.json'
SKIPPED = 'skipped'
# Beam output tag of the FileOutcome of every file.
OUTCOMES = 'file_outcomes'
# Formats that both Pillow (here) and tf.io.decode_image (in the Transform graph) decode.
SUPPORTED_FORMATS = ('jpeg', 'png', 'gif', 'bmp')
# Tone statistics are averages, within a grey level of the full image's on a thumbnail this small,
# and JPEG's DCT scaling (Image.draft) makes decoding one several times cheaper than a full decode.
TONE_THUMBNAIL_SIDE = 128
_SUMMARY_PATH_KEY = '_image_summary_path'
# Each Beam worker logs a progress line after this many files.
PROGRESS_EVERY = 1000


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


class ImageProperties(NamedTuple):
  """What the ExampleGen records about an image besides its bytes, so that TFDV can describe it."""
  height: int
  width: int
  format: str
  color_mode: str  # Pillow's mode of the file: RGB, L (grey), RGBA, CMYK, P (palette), ...
  mean_brightness: float  # mean grey level (ITU-R 601 luma), 0-255
  contrast: float  # standard deviation of the grey levels
  mean_saturation: float  # mean HSV saturation, 0 (grey) to 1 (pure colours)


def _tone_statistics(image: Image.Image) -> Tuple[float, float, float]:
  """(mean brightness, contrast, mean saturation) of a thumbnail of ``image`` in RGB."""
  image.draft('RGB', (TONE_THUMBNAIL_SIDE, TONE_THUMBNAIL_SIDE))
  rgb = image.convert('RGB')
  rgb.thumbnail((TONE_THUMBNAIL_SIDE, TONE_THUMBNAIL_SIDE))
  grey = ImageStat.Stat(rgb.convert('L'))
  saturation = ImageStat.Stat(rgb.convert('HSV').getchannel('S'))
  return grey.mean[0], grey.stddev[0], saturation.mean[0] / 255.0


def inspect_image(data: bytes) -> ImageProperties:
  """Returns the properties of an image that the Transform graph will decode.

  Pillow reads the header (format, size, mode) and a thumbnail for the tone statistics;
  TensorFlow's own decoder, the one the Transform graph runs, decodes the whole image, so whatever
  passes here also decodes in training and serving. Raises UnreadableImageError otherwise.
  """
  if not data:
    raise UnreadableImageError('empty file')
  try:
    with Image.open(io.BytesIO(data)) as image:
      image_format = (image.format or '').lower()
      height, width, color_mode = image.height, image.width, image.mode
      tones = _tone_statistics(image) if image_format in SUPPORTED_FORMATS else None
  except Image.UnidentifiedImageError as e:
    raise UnreadableImageError('not a decodable image: unknown file type') from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise UnreadableImageError(f'not a decodable image: {e}') from e
  if image_format not in SUPPORTED_FORMATS:
    raise UnreadableImageError(f'unsupported image format {image_format or "unknown"!r}')
  try:
    tf.io.decode_image(data, channels=3, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
    # Drop TensorFlow's op and device decorations: '{{function_node ...}} <what> [Op:DecodeImage]'.
    message = re.sub(r'\{\{.*?\}\}\s*|\s*\[Op:\w+\]', '', e.message.splitlines()[0])
    raise UnreadableImageError(f'not a decodable image: {message}') from e
  return ImageProperties(height, width, image_format, color_mode, *tones)


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
                 properties: ImageProperties) -> tf.train.Example:

  def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  def _float(value: float) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))

  return tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: _bytes(data),
      features.LABEL_KEY: _int(label),
      features.LABEL_NAME_KEY: _bytes(class_name.encode('utf-8')),
      features.FILENAME_KEY: _bytes(relative_path.encode('utf-8')),
      features.HEIGHT_KEY: _int(properties.height),
      features.WIDTH_KEY: _int(properties.width),
      features.FORMAT_KEY: _bytes(properties.format.encode('utf-8')),
      features.FILE_SIZE_KEY: _int(len(data)),
      features.ASPECT_RATIO_KEY: _float(properties.width / properties.height),
      features.COLOR_MODE_KEY: _bytes(properties.color_mode.encode('utf-8')),
      features.BRIGHTNESS_KEY: _float(properties.mean_brightness),
      features.CONTRAST_KEY: _float(properties.contrast),
      features.SATURATION_KEY: _float(properties.mean_saturation),
  }))


class _FileToExample(beam.DoFn):
  """ReadableFile -> tagged (split) tf.Example, and a FileOutcome for the summary."""

  def __init__(self, root: str, config: Dict[str, Any]):
    self._root = root.rstrip('/')
    self._config = config
    self._label_of = {name: i for i, name in enumerate(config['class_names'])}
    self._files_read = 0  # by this worker, for the progress log

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
    self._files_read += 1
    if self._files_read % PROGRESS_EVERY == 0:
      logging.info('Image ExampleGen: %d files read by worker %d', self._files_read, os.getpid())
    try:
      if class_name not in self._label_of:
        raise UnreadableImageError(f'class folder {class_name!r} is not one of the training classes')
      data = readable_file.read()
      properties = inspect_image(data)
    except UnreadableImageError as e:
      beam.metrics.Metrics.counter('image_example_gen', 'files_skipped').inc()
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, SKIPPED, str(e)))
    else:
      split = assign_split(relative_path, split_folder, self._config)
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, split))
      yield beam.pvalue.TaggedOutput(split, make_example(
          data, self._label_of[class_name], class_name, relative_path, properties))


class _SummaryFn(beam.CombineFn):
  """Counts per split and class, lists every skipped file with its reason, and the ignored ones."""

  def __init__(self, ignored_files: List[str]):
    super().__init__()
    self._ignored_files = sorted(ignored_files)

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
        'ignored': self._ignored_files,
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


class ImagesToExamples(beam.PTransform):
  """The image files under ``root`` that match ``pattern`` -> tf.Examples tagged by split, and a
  FileOutcome of every file tagged OUTCOMES. ``validate.py`` reads new data with it too, so its
  statistics come from the very same features."""

  def __init__(self, root: str, pattern: str, config: Dict[str, Any], split_names: List[str]):
    super().__init__()
    self._root, self._pattern = root, pattern
    self._config, self._split_names = config, split_names

  def expand(self, pipeline: beam.Pipeline) -> beam.pvalue.DoOutputsTuple:
    # The driver has put the span in the pattern ('span-3/*/*/*'); paths, and so the hash splits,
    # are taken below the span folder, so a file keeps its split from span to span.
    data_root = os.path.join(self._root, pattern_base(self._pattern))
    return (
        pipeline
        | 'ListFiles' >> beam.Create(file_tree.list_files(os.path.join(self._root, self._pattern)))
        | 'Reshuffle' >> beam.Reshuffle()
        | 'ReadMatches' >> fileio.ReadMatches()
        | 'ToExample' >> beam.ParDo(_FileToExample(data_root, self._config)).with_outputs(
            OUTCOMES, *self._split_names))


def pattern_base(pattern: str) -> str:
  """The folders of ``pattern`` before its first wildcard: 'span-3/*/*/*' -> 'span-3', '*/*' -> ''."""
  fixed = []
  for part in pattern.split('/'):
    if any(c in part for c in '*?['):
      break
    fixed.append(part)
  return '/'.join(fixed)


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

    results = pipeline | 'ToExamples' >> ImagesToExamples(
        root, input_config.splits[0].pattern, config, split_names)
    summary_path = exec_properties.get(_SUMMARY_PATH_KEY)
    if summary_path:
      _ = (results[OUTCOMES]
           | 'Summarise' >> beam.CombineGlobally(_SummaryFn(config.get('ignored_files', [])))
           | 'WriteSummary' >> beam.Map(_write_json, summary_path))
    return {split: results[split] for split in split_names}

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    summary_path = os.path.join(examples.uri, SUMMARY_FILE)
    self._write_splits(examples, {**exec_properties, _SUMMARY_PATH_KEY: summary_path})
    with tf.io.gfile.GFile(summary_path) as f:
      summary = json.load(f)
    config = unpack_custom_config(exec_properties)
    examples.set_string_custom_property('class_names', json.dumps(config['class_names']))
    for key in ('files_seen', 'images_used', 'files_skipped'):
      examples.set_int_custom_property(key, summary[key])
    logging.info('Image ExampleGen: %d files seen, %d used, %d skipped; per split: %s',
                 summary['files_seen'], summary['images_used'], summary['files_skipped'],
                 summary['counts'])
    for skipped in summary['skipped']:
      logging.warning('Image ExampleGen skipped %s: %s', skipped['path'], skipped['reason'])
    if summary['ignored']:
      logging.warning('Image ExampleGen ignored %d file(s) outside the class folders: %s',
                      len(summary['ignored']), ', '.join(summary['ignored']))
    check_summary(summary, artifact_utils.decode_split_names(examples.split_names),
                  config['max_skipped_fraction'], summary_path,
                  exec_properties[standard_component_specs.INPUT_BASE_KEY])


  def _write_splits(self, examples: types.Artifact, exec_properties: Dict[str, Any]) -> None:
    """BaseExampleGenExecutor.Do without its shuffle of the written examples.

    TFX reshuffles every example before writing; on the DirectRunner that shuffle holds every
    image of a split in memory at once. The file list is already shuffled before the files are
    read (ImagesToExamples), so the examples are written as they are made, in bounded memory.
    """
    self._log_startup({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    with self._make_beam_pipeline() as pipeline:
      splits = self.GenerateExamplesByBeam(pipeline, exec_properties)
      examples.split_names = artifact_utils.encode_split_names(list(splits))
      for split, split_examples in splits.items():
        split_uri = artifact_utils.get_split_uri([examples], split)
        _ = (split_examples
             | f'Serialize[{split}]' >> beam.Map(lambda example: example.SerializeToString())
             | f'Write[{split}]' >> beam.io.WriteToTFRecord(
                 os.path.join(split_uri, write_split.DEFAULT_FILE_NAME), file_name_suffix='.gz'))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    examples_utils.set_file_format(
        examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))


def check_summary(summary: Dict[str, Any], split_names: List[str], max_skipped_fraction: float,
                  summary_path: str, data_root: str) -> None:
  """Fails with a readable message when too many files were skipped or a split is empty."""
  seen = summary['files_seen']
  if not summary['images_used']:
    raise layout_lib.NoImagesError(
        f"data root {data_root!r} yields no images: {seen} file(s) found, "
        f"{summary['files_skipped']} of them not decodable images (listed in {summary_path}).")
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
