"""Reads the folder structure of an image data root (names only, no image is opened).

Two layouts are understood:

* split folders: ``<root>/train/<class>/*`` with ``<root>/validation/<class>/*`` (the tutorial's),
  ``<root>/test/<class>/*`` or both (the Keras and Kaggle convention); any other folder beside
  ``train/`` is refused, never read as more data of some split (splits.py says which folder feeds
  which split);
* class folders only: ``<root>/<class>/*``, split by file hash later.

Either may sit in span folders, ``<root>/span-<N>/...``, one per batch of new data: the ExampleGen
then reads the latest span (TFX's ``{SPAN}`` pattern) and records its number on the Examples.

Class names are the sorted class folder names; a label id is the index of its name.
"""
import dataclasses
import os
import re
from typing import List, Tuple

import tensorflow as tf

from components.image_example_gen import file_tree

TRAIN_FOLDER = 'train'
VALIDATION_FOLDER = 'validation'
TEST_FOLDER = 'test'
SPLIT_FOLDERS = (TRAIN_FOLDER, VALIDATION_FOLDER, TEST_FOLDER)
SPAN_FOLDER = re.compile(r'span-(\d+)')


class DataLayoutError(ValueError):
  """The data root cannot be read as an image folder tree; the message says what to fix."""


class NoImagesError(DataLayoutError):
  """The data root yields no image files at all: a usage error (exit status 2 in the CLIs)."""
  exit_status = 2


@dataclasses.dataclass(frozen=True)
class ImageLayout:
  class_names: Tuple[str, ...]
  # Split folders present under the root, e.g. ('train', 'validation'); empty for class folders only.
  split_folders: Tuple[str, ...]
  # Files outside any class folder (a README beside the split folders): not images of a class, so
  # not read, but listed in the ExampleGen's summary so that nothing goes unnoticed.
  ignored_files: Tuple[str, ...] = ()
  # The root holds span-<N>/ folders; the layout above is that of the latest one.
  spans: bool = False

  @property
  def file_pattern(self) -> str:
    """Glob, relative to the root, that matches every image (ExampleGen fingerprints it for caching)."""
    pattern = '*/*/*' if self.split_folders else '*/*'
    return f'span-{{SPAN}}/{pattern}' if self.spans else pattern


def _subfolders(path: str) -> List[str]:
  return sorted(
      name.rstrip('/') for name in tf.io.gfile.listdir(path)
      if not name.startswith('.') and tf.io.gfile.isdir(os.path.join(path, name)))


def _files(path: str) -> List[str]:
  return sorted(name for name in tf.io.gfile.listdir(path)
                if not name.startswith('.') and not tf.io.gfile.isdir(os.path.join(path, name)))


def _has_files(path: str) -> bool:
  return any(not name.startswith('.') and not tf.io.gfile.isdir(os.path.join(path, name))
             for name in tf.io.gfile.listdir(path))


def _found(folder: str) -> str:
  """What a folder holds, for a message: "2 folder(s) ['cats', 'dogs'] holding no files"."""
  folders, files = _subfolders(folder), _files(folder)
  if not folders and not files:
    return 'nothing (an empty folder)'
  found = [f'{len(folders)} folder(s) {folders[:5]} holding no files'] if folders else []
  return ', '.join(found + ([f'{len(files)} file(s) {files[:5]} outside any class folder']
                            if files else []))


def _split_folders(root: str, top: List[str]) -> Tuple[str, ...]:
  """The split folders of a root that has ``train/``, in SPLIT_FOLDERS' order; raises
  DataLayoutError for a folder that is not one, for a root with neither validation/ nor test/,
  and for a split folder without class folders (e.g. Kaggle's unlabelled test/)."""
  others = sorted(set(top) - set(SPLIT_FOLDERS))
  if others:
    raise DataLayoutError(
        f'data root {root!r} has folder(s) {others} beside {TRAIN_FOLDER}/; the split folders are '
        f'{", ".join(f + "/" for f in SPLIT_FOLDERS)}: rename them (e.g. val/ -> '
        f'{VALIDATION_FOLDER}/) or move them out of the data root.')
  split_folders = tuple(folder for folder in SPLIT_FOLDERS if folder in top)
  if split_folders == (TRAIN_FOLDER,):
    raise DataLayoutError(
        f'data root {root!r} has a {TRAIN_FOLDER}/ folder but neither {VALIDATION_FOLDER}/ nor '
        f'{TEST_FOLDER}/; add {VALIDATION_FOLDER}/<class>/<images> (the eval and test splits come '
        'from it), or put the class folders directly under the root to split by hash.')
  for folder in split_folders:
    if not _subfolders(os.path.join(root, folder)):
      raise DataLayoutError(
          f'{os.path.join(root, folder)!r} holds no class folders (found '
          f'{_found(os.path.join(root, folder))}); its images must sit in <class>/ folders, as in '
          f'{TRAIN_FOLDER}/: unlabelled images cannot be evaluated (classify them with predict.py).')
  return split_folders


def _check_no_link_loops(paths: List[str]) -> None:
  for path in paths:
    target = file_tree.link_loop(path)
    if target:
      raise DataLayoutError(f'{path!r} is a symbolic link to {target!r}, a folder that contains '
                            'it (a loop); remove the link.')


def detect_layout(root: str) -> ImageLayout:
  """Returns the layout of ``root`` or raises DataLayoutError with one line that says what to fix."""
  if not tf.io.gfile.isdir(root):
    raise NoImagesError(f'data root {root!r} does not exist or is not a folder; '
                        'pass --data-root DIR with DIR/train/<class>/<images>.')
  top = _subfolders(root)
  _check_no_link_loops([os.path.join(root, name) for name in top])
  spans = {int(m.group(1)): name for name in top for m in [SPAN_FOLDER.fullmatch(name)] if m}
  if spans:
    others = sorted(set(top) - set(spans.values()))
    if others:
      raise DataLayoutError(f'data root {root!r} mixes span folders {sorted(spans.values())} with '
                            f'other folders {others}; move each batch of data into its own span-<N>/.')
    latest = detect_layout(os.path.join(root, spans[max(spans)]))
    return dataclasses.replace(latest, spans=True)
  if TRAIN_FOLDER in top:
    split_folders = _split_folders(root, top)
    class_names = _subfolders(os.path.join(root, TRAIN_FOLDER))
    for split in split_folders[1:]:
      unknown = sorted(set(_subfolders(os.path.join(root, split))) - set(class_names))
      if unknown:
        raise DataLayoutError(f'{os.path.join(root, split)!r} has class folders {unknown} '
                              f'that {TRAIN_FOLDER}/ lacks; every class must have training images.')
    class_root = os.path.join(root, TRAIN_FOLDER)
  else:
    split_folders = ()
    class_names = top
    class_root = root
  _check_no_link_loops([os.path.join(class_root, name) for name in class_names])
  if not any(_has_files(os.path.join(class_root, name)) for name in class_names):
    raise NoImagesError(f'data root {root!r} yields no images: found {_found(class_root)} in '
                        f'{class_root!r}.')
  if len(class_names) < 2:
    raise DataLayoutError(
        f'{class_root!r} has {len(class_names)} class folder(s) {class_names}; a classifier needs '
        'at least two, one folder per class with the images inside.')
  empty = [name for name in class_names if not _has_files(os.path.join(class_root, name))]
  if empty:
    raise DataLayoutError(f'class folder(s) {empty} under {class_root!r} hold no files; '
                          'remove them or add images.')
  # One glob (one listing on object stores) finds anything nested inside a class folder.
  depth = ['*'] * (4 if split_folders else 3)
  nested = [path for path in tf.io.gfile.glob(os.path.join(root, *depth))
            if '/.' not in path[len(root):].replace(os.sep, '/')]
  _check_no_link_loops(sorted({os.path.dirname(path) for path in nested}))
  if nested:
    raise DataLayoutError(
        f'{len(nested)} entries are nested inside class folders, e.g. {nested[0]!r}; images must '
        'sit directly in their class folder (<class>/<image>): move them up or remove the subfolder.')
  ignored = [name for name in _files(root)] + [
      f'{split}/{name}' for split in split_folders for name in _files(os.path.join(root, split))]
  return ImageLayout(class_names=tuple(class_names), split_folders=split_folders,
                     ignored_files=tuple(ignored))
