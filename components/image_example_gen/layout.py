"""Reads the folder structure of an image data root (names only, no image is opened).

Two layouts are understood:

* split folders, the tutorial's: ``<root>/train/<class>/*`` and ``<root>/validation/<class>/*``;
* class folders only: ``<root>/<class>/*``, split by file hash later.

Class names are the sorted class folder names; a label id is the index of its name.
"""
import dataclasses
import os
from typing import List, Optional, Tuple

import tensorflow as tf

TRAIN_FOLDER = 'train'
VALIDATION_FOLDER = 'validation'


class DataLayoutError(ValueError):
  """The data root cannot be read as an image folder tree; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class ImageLayout:
  class_names: Tuple[str, ...]
  # Split folders present under the root, e.g. ('train', 'validation'); empty for class folders only.
  split_folders: Tuple[str, ...]

  @property
  def file_pattern(self) -> str:
    """Glob, relative to the root, that matches every image (ExampleGen fingerprints it for caching)."""
    return '*/*/*' if self.split_folders else '*/*'


def _subfolders(path: str) -> List[str]:
  return sorted(
      name.rstrip('/') for name in tf.io.gfile.listdir(path)
      if not name.startswith('.') and tf.io.gfile.isdir(os.path.join(path, name)))


def _has_files(path: str) -> bool:
  return any(not name.startswith('.') and not tf.io.gfile.isdir(os.path.join(path, name))
             for name in tf.io.gfile.listdir(path))


def detect_layout(root: str, train_folder: str = TRAIN_FOLDER,
                  validation_folder: Optional[str] = VALIDATION_FOLDER) -> ImageLayout:
  """Returns the layout of ``root`` or raises DataLayoutError with one line that says what to fix."""
  if not tf.io.gfile.isdir(root):
    raise DataLayoutError(f'data root {root!r} does not exist or is not a folder; '
                          'pass --data-root DIR with DIR/train/<class>/<images>.')
  top = _subfolders(root)
  if train_folder in top:
    split_folders = tuple(f for f in (train_folder, validation_folder) if f and f in top)
    if validation_folder and validation_folder not in split_folders:
      raise DataLayoutError(
          f'data root {root!r} has a {train_folder}/ folder but no {validation_folder}/ folder; '
          f'add {validation_folder}/<class>/<images> (the eval and test splits come from it), '
          'or put the class folders directly under the root to split by hash.')
    class_names = _subfolders(os.path.join(root, train_folder))
    for split in split_folders[1:]:
      unknown = sorted(set(_subfolders(os.path.join(root, split))) - set(class_names))
      if unknown:
        raise DataLayoutError(f'{os.path.join(root, split)!r} has class folders {unknown} '
                              f'that {train_folder}/ lacks; every class must have training images.')
    class_root = os.path.join(root, train_folder)
  else:
    split_folders = ()
    class_names = top
    class_root = root
  if len(class_names) < 2:
    raise DataLayoutError(
        f'{class_root!r} has {len(class_names)} class folder(s) {class_names}; a classifier needs '
        'at least two, one folder per class with the images inside.')
  empty = [name for name in class_names if not _has_files(os.path.join(class_root, name))]
  if empty:
    raise DataLayoutError(f'class folder(s) {empty} under {class_root!r} hold no files; '
                          'remove them or add images.')
  return ImageLayout(class_names=tuple(class_names), split_folders=split_folders)
