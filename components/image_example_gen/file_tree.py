"""Listing image files the way a user's file manager shows them: symbolic links followed.

A data set is often assembled from links (``data/cats -> /mnt/photos/cats``, or links to single
files). Beam's local file matching walks folders without following links, so a root of linked
class folders read as empty. Everything that reads a data root lists it here instead:

* ``list_files(pattern)``: the files matching a glob whose depth is fixed by the layout (locally
  TensorFlow's glob, which follows links; fixed depth, so a loop cannot hang it; on object stores,
  which have no links, Beam's one listing);
* ``walk_files(folder)``: every non-hidden file below a folder, links followed, for predict.py;
* a link to a folder that contains it (a loop) raises LinkLoopError naming the link, rather than
  hanging or reading the same images again.
"""
import os
from typing import List, Optional


class LinkLoopError(ValueError):
  """A symbolic link points to a folder that contains it."""


def link_loop(path: str) -> Optional[str]:
  """The folder that ``path`` links to when that folder contains ``path`` (a loop), else None."""
  if not os.path.islink(path):
    return None
  target = os.path.realpath(path)
  parent = os.path.realpath(os.path.dirname(path))
  return target if os.path.commonpath([target, parent]) == target else None


def list_files(pattern: str) -> List[str]:
  """Files (not folders) matching ``pattern``, symbolic links followed, sorted."""
  if '://' in pattern:  # object stores have no links: one listing, as Beam's MatchFiles does
    from apache_beam.io.filesystems import FileSystems  # pylint: disable=g-import-not-at-top
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
  # Here, not at the top: predict.py's TFLite engine walks folders without loading TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(path for path in tf.io.gfile.glob(pattern) if not os.path.isdir(path))


def walk_files(folder: str) -> List[str]:
  """Every non-hidden file below ``folder``, links to files and folders followed, in a stable
  order. Each folder is read once: one reached again through a link (a loop, or a second link to
  it) raises LinkLoopError, so a loop cannot hang the walk and no image is read twice."""
  found, seen = [], {os.path.realpath(folder)}
  for parent, subfolders, files in os.walk(folder, followlinks=True):
    kept = []
    for name in sorted(d for d in subfolders if not d.startswith('.')):
      path = os.path.join(parent, name)
      target = os.path.realpath(path)
      if target in seen:
        raise LinkLoopError(f'{path!r} leads to {target!r}, a folder already read: a symbolic '
                            'link loop (or a second link to one folder); remove the link.')
      seen.add(target)
      kept.append(name)
    subfolders[:] = kept
    found += [os.path.join(parent, name) for name in sorted(files) if not name.startswith('.')]
  return found
