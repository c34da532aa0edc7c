"""The Beam transform that turns image files into tf.Examples tagged by split.

The ExampleGen's executor writes its output; ``validate.py`` computes the statistics of new data
with it, so both describe images by the very same features. Files that are not usable images are
skipped, each with a FileOutcome that says why (the summary lists them); a file over the image
budget is skipped before it is read whole ('too large: 123456789 bytes (limit 100000000)') or
decoded ('too large: 20000×20000 pixels (limit 200000000)').
"""
import os
import posixpath
from typing import Any, Dict, Iterable, List, NamedTuple

from absl import logging
import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from components.image_example_gen import file_tree
from components.image_example_gen import image_properties
from components.image_example_gen import splits
from components.image_example_gen import tf_example
from components.modules import image_budget

SKIPPED = 'skipped'
# Beam output tag of the FileOutcome of every file.
OUTCOMES = 'file_outcomes'
# Each Beam worker logs a progress line after this many files.
PROGRESS_EVERY = 1000


class FileOutcome(NamedTuple):
  """What became of one file: its split, or SKIPPED with the reason."""
  relative_path: str
  class_name: str
  split: str
  reason: str = ''


class _FileToExample(beam.DoFn):
  """ReadableFile -> tagged (split) tf.Example, and a FileOutcome for the summary."""

  def __init__(self, root: str, config: Dict[str, Any]):
    self._root = root.rstrip('/')
    self._config = config
    self._label_of = {name: i for i, name in enumerate(config['class_names'])}
    self._budget = image_budget.from_settings(config)
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
        raise image_properties.UnreadableImageError(
            f'class folder {class_name!r} is not one of the training classes')
      data = _read_within(readable_file, self._budget)
      properties = image_properties.inspect_image(data, self._budget)
    except image_properties.UnreadableImageError as e:
      beam.metrics.Metrics.counter('image_example_gen', 'files_skipped').inc()
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, SKIPPED, str(e)))
    else:
      split = splits.assign_split(relative_path, split_folder, self._config)
      yield beam.pvalue.TaggedOutput(OUTCOMES, FileOutcome(relative_path, class_name, split))
      yield beam.pvalue.TaggedOutput(split, tf_example.make_example(
          data, self._label_of[class_name], class_name, relative_path, properties))


def _read_within(readable_file: fileio.ReadableFile, budget: image_budget.ImageBudget) -> bytes:
  """The file's bytes; for a file over the byte budget, TooLargeError after reading no more than
  one byte past the budget (the file list carries no sizes, and a stat of every file would double
  the requests to an object store)."""
  with readable_file.open() as f:
    data = f.read(budget.max_bytes + 1)
  if len(data) > budget.max_bytes:
    size = FileSystems.match([readable_file.metadata.path])[0].metadata_list[0].size_in_bytes
    raise image_properties.TooLargeError(image_budget.file_size_reason(size, budget))
  return data


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
