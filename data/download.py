"""Downloads the tutorial's ``cats_and_dogs_filtered`` archive once into a cache, verified.

The check is a SHA-256 over the extracted images (sorted ``path<TAB>sha256(file)`` lines of
``train/`` and ``validation/``), so a truncated download, a changed archive or a corrupted cache is
caught whatever the zip's own metadata.
"""
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile

URL = 'https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip'
NAME = 'cats_and_dogs_filtered'
IMAGES_SHA256 = '2b9b6211fd77314c40146365ed33cc811c254b39fa514aa93200c386c2a34a89'
_VERIFIED_MARKER = '.verified'


class DownloadError(RuntimeError):
  """The archive could not be fetched or did not verify; the message says what to do."""


def default_cache_dir() -> str:
  return os.environ.get('CATS_DOGS_CACHE',
                        os.path.join(os.path.expanduser('~'), '.cache', 'cats-dogs-tfx'))


def images_digest(root: str) -> str:
  """SHA-256 over the sorted (relative path, file SHA-256) pairs of train/ and validation/."""
  lines = []
  for split in ('train', 'validation'):
    for folder, _, files in os.walk(os.path.join(root, split)):
      for name in files:
        path = os.path.join(folder, name)
        with open(path, 'rb') as f:
          file_hash = hashlib.sha256(f.read()).hexdigest()
        lines.append(f'{os.path.relpath(path, root)}\t{file_hash}\n')
  return hashlib.sha256(''.join(sorted(lines)).encode('utf-8')).hexdigest()


def _download(url: str, path: str) -> None:
  try:
    with urllib.request.urlopen(url, timeout=30) as response, open(path, 'wb') as out:
      total = int(response.headers.get('Content-Length') or 0)
      done = 0
      while chunk := response.read(1 << 20):
        out.write(chunk)
        done += len(chunk)
        if total:
          print(f'\rdownloading {NAME}: {done / total:6.1%} of {total >> 20} MiB',
                end='', file=sys.stderr, flush=True)
      print(file=sys.stderr)
  except (urllib.error.URLError, OSError) as e:
    raise DownloadError(
        f'could not download {url} ({e}). Without a network, extract a copy of the archive and '
        'pass --data-root DIR (DIR/train/<class>/..., DIR/validation/<class>/...).') from e


def fetch(cache_dir: str = None, url: str = URL, expected_sha256: str = IMAGES_SHA256) -> str:
  """Returns the extracted, verified data root, downloading it on first use only."""
  cache_dir = cache_dir or default_cache_dir()
  root = os.path.join(cache_dir, NAME)
  if os.path.exists(os.path.join(root, _VERIFIED_MARKER)):
    return root
  os.makedirs(cache_dir, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
    archive = os.path.join(scratch, f'{NAME}.zip')
    _download(url, archive)
    try:
      with zipfile.ZipFile(archive) as zf:
        zf.extractall(scratch)
    except zipfile.BadZipFile as e:
      raise DownloadError(f'{url} did not return a zip archive ({e}); try again later.') from e
    extracted = os.path.join(scratch, NAME)
    digest = images_digest(extracted)
    if digest != expected_sha256:
      raise DownloadError(f'{url} did not verify: images SHA-256 {digest}, expected '
                          f'{expected_sha256}. Nothing was cached.')
    open(os.path.join(extracted, _VERIFIED_MARKER), 'w').close()
    shutil.rmtree(root, ignore_errors=True)
    os.replace(extracted, root)
  return root
