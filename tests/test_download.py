"""The real-data downloader: verified extraction into the cache, clear errors offline or on mismatch."""
import os
import zipfile

import pytest

from data import download
from tests.trees import make_tree


def _archive(tmp_path):
  tree = make_tree(str(tmp_path / 'src' / download.NAME),
                   {'train': {'cats': 2, 'dogs': 2}, 'validation': {'cats': 1, 'dogs': 1}})
  archive = tmp_path / 'archive.zip'
  with zipfile.ZipFile(archive, 'w') as zf:
    for folder, _, files in os.walk(tree):
      for name in files:
        path = os.path.join(folder, name)
        zf.write(path, os.path.relpath(path, tmp_path / 'src'))
    zf.writestr(f'{download.NAME}/vectorize.py', '# not an image: outside the digest')
  return tree, archive.as_uri()


def test_fetch_extracts_verifies_and_reuses_the_cache(tmp_path):
  tree, url = _archive(tmp_path)
  digest = download.images_digest(tree)
  root = download.fetch(cache_dir=str(tmp_path / 'cache'), url=url, expected_sha256=digest)
  assert sorted(os.listdir(os.path.join(root, 'train'))) == ['cats', 'dogs']
  assert download.images_digest(root) == digest
  # Cached: a second call neither downloads nor checks the (now wrong) URL.
  assert download.fetch(cache_dir=str(tmp_path / 'cache'), url='http://127.0.0.1:9/none.zip',
                        expected_sha256=digest) == root


def test_checksum_mismatch_caches_nothing(tmp_path):
  _, url = _archive(tmp_path)
  with pytest.raises(download.DownloadError, match='did not verify'):
    download.fetch(cache_dir=str(tmp_path / 'cache'), url=url, expected_sha256='0' * 64)
  assert os.listdir(tmp_path / 'cache') == []


def test_unreachable_url_names_the_offline_alternative(tmp_path):
  with pytest.raises(download.DownloadError, match='--data-root'):
    download.fetch(cache_dir=str(tmp_path / 'cache'), url='http://127.0.0.1:9/archive.zip')
