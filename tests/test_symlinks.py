"""Symbolic links in a data root are followed everywhere it is read; loops and empty roots stop
with one line."""
import hashlib
import os

import pytest

import local_runner
import predict
import validate
from components.image_example_gen import DataLayoutError, detect_layout, executor, file_tree
from tests.test_image_example_gen import read_split, run_executor
from tests.trees import make_tree

PER_SPLIT = {'train': {'cats': 3, 'dogs': 3}, 'validation': {'cats': 4, 'dogs': 4}}


def _linked_copy(source, root):
  """``source``'s tree made of links: train/cats links to its folder, each file of train/dogs is a
  link, and validation/ is a link to the whole split folder."""
  os.makedirs(os.path.join(root, 'train', 'dogs'))
  os.symlink(os.path.join(source, 'train', 'cats'), os.path.join(root, 'train', 'cats'))
  for name in os.listdir(os.path.join(source, 'train', 'dogs')):
    os.symlink(os.path.join(source, 'train', 'dogs', name), os.path.join(root, 'train', 'dogs', name))
  os.symlink(os.path.join(source, 'validation'), os.path.join(root, 'validation'))
  return root


def _examples(tmp_path, root):
  examples = run_executor(tmp_path, root)
  return {split: sorted((e.features.feature['filename'].bytes_list.value[0],
                         e.features.feature['label'].int64_list.value[0],
                         hashlib.sha256(e.features.feature['image_raw'].bytes_list.value[0]).hexdigest())
                        for e in read_split(examples, split))
          for split in ('train', 'eval', 'test')}


def test_a_tree_of_links_gives_the_same_examples_as_the_copied_tree(tmp_path):
  copied = make_tree(str(tmp_path / 'copied'), PER_SPLIT)
  linked = _linked_copy(copied, str(tmp_path / 'linked'))
  assert detect_layout(linked) == detect_layout(copied)
  (tmp_path / 'a').mkdir()
  (tmp_path / 'b').mkdir()
  from_links, from_copies = _examples(tmp_path / 'a', linked), _examples(tmp_path / 'b', copied)
  assert from_links == from_copies
  assert sum(len(v) for v in from_links.values()) == 14


@pytest.mark.parametrize('link, target', [
    ('train/cats/loop', '../..'),  # inside a class folder, to the root
    ('train/birds', '..'),  # a class folder that is the split folder itself
])
def test_a_link_loop_in_the_data_root_is_reported(tmp_path, link, target):
  root = make_tree(str(tmp_path / 'data'), PER_SPLIT)
  os.symlink(target, os.path.join(root, link))
  with pytest.raises(DataLayoutError, match=r'is a symbolic link to .*a folder that contains it \(a loop\)'):
    detect_layout(root)


def test_walking_a_cycle_of_links_stops(tmp_path):
  (tmp_path / 'a').mkdir()
  (tmp_path / 'b').mkdir()
  (tmp_path / 'a' / 'cat.jpg').write_bytes(b'x')
  os.symlink('../b', tmp_path / 'a' / 'to_b')
  os.symlink('../a', tmp_path / 'b' / 'to_a')  # a -> b -> a: no link points to its own ancestor
  with pytest.raises(file_tree.LinkLoopError, match='a folder already read'):
    file_tree.walk_files(str(tmp_path / 'a'))


def test_predict_follows_links_to_folders_and_files(tmp_path):
  (tmp_path / 'photos').mkdir()
  (tmp_path / 'photos' / 'cat.jpg').write_bytes(b'x')
  (tmp_path / 'input').mkdir()
  os.symlink(tmp_path / 'photos', tmp_path / 'input' / 'linked_folder')
  os.symlink(tmp_path / 'photos' / 'cat.jpg', tmp_path / 'input' / 'linked_file.jpg')
  assert [os.path.relpath(p, tmp_path / 'input') for p in predict.list_images([str(tmp_path / 'input')])] == [
      'linked_file.jpg', 'linked_folder/cat.jpg']


def _empty_root(tmp_path):
  root = tmp_path / 'empty'
  (root / 'cats').mkdir(parents=True)
  (root / 'dogs').mkdir()
  (root / 'dogs' / '.DS_Store').write_bytes(b'\0')
  return root


def _one_line(capsys):
  err = capsys.readouterr().err
  assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
  assert 'split ratios' not in err and '--test-fraction' not in err
  return err


def test_an_empty_root_is_a_usage_error_everywhere(tmp_path, capsys):
  root = _empty_root(tmp_path)
  assert local_runner.main(['--data-root', str(root), '--pipeline-root', str(tmp_path / 'p')]) == 2
  assert (f"data root '{root}' yields no images: found 2 folder(s) ['cats', 'dogs'] holding no "
          'files') in _one_line(capsys)
  assert validate.main(['--data-root', str(root), '--pipeline-root', str(tmp_path / 'p'),
                        '--output-dir', str(tmp_path / 'report')]) == 2
  assert f"data root '{root}' yields no images" in _one_line(capsys)
  assert predict.main([str(root), '--model', str(tmp_path)]) == 2
  assert f'{root} yields no images' in _one_line(capsys)


def test_files_that_are_no_images_are_no_data_set(tmp_path):
  root = tmp_path / 'text'
  for name in ('cats', 'dogs'):
    (root / name).mkdir(parents=True)
    (root / name / 'notes.jpg').write_text('not a picture')
  (tmp_path / 'out').mkdir()
  with pytest.raises(DataLayoutError, match=r"yields no images: 2 file\(s\) found, 2 of them not"):
    run_executor(tmp_path / 'out', str(root))
