"""Image ExampleGen: layout, image inspection, split assignment, and the Beam executor end to end."""
import hashlib
import io
import json
import os
import shutil

from apache_beam.io import fileio
from PIL import Image
import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import DataLayoutError, ImageExampleGen, detect_layout
from components.image_example_gen import executor, image_properties, summary as summary_lib
from components.image_example_gen import splits as split_lib
from components.modules import features
from pipeline import configs
from tests import bombs
from tests.trees import SAMPLE_DATA, default_budget, encode, make_tree


# --- layout --------------------------------------------------------------------------------------

def test_split_folder_layout_sorts_class_names(tmp_path):
  root = make_tree(str(tmp_path), {'train': {'dogs': 1, 'cats': 1}, 'validation': {'cats': 1}})
  layout = detect_layout(root)
  assert layout.class_names == ('cats', 'dogs')
  assert layout.split_folders == ('train', 'validation')
  assert layout.file_pattern == '*/*/*'


def test_class_folder_layout(tmp_path):
  for name in ('dogs', 'cats', 'birds'):
    os.makedirs(tmp_path / name)
    Image.new('RGB', (8, 8)).save(tmp_path / name / 'a.png')
  layout = detect_layout(str(tmp_path))
  assert layout.class_names == ('birds', 'cats', 'dogs')
  assert layout.split_folders == ()
  assert layout.file_pattern == '*/*'


@pytest.mark.parametrize('folders', [('train', 'validation', 'test'), ('train', 'test')])
def test_a_test_folder_is_a_split_folder(tmp_path, folders):
  root = make_tree(str(tmp_path), {folder: {'cats': 1, 'dogs': 1} for folder in folders})
  layout = detect_layout(root)
  assert layout.split_folders == folders
  assert layout.class_names == ('cats', 'dogs')


@pytest.mark.parametrize('tree, message', [
    ({'train': {'cats': 1, 'dogs': 1}}, 'neither validation/ nor test/'),
    ({'train': {'cats': 1}, 'validation': {'cats': 1}}, 'at least two'),
    # A folder that is not a split folder is refused, never read as more data of some split.
    ({'train': {'cats': 1, 'dogs': 1}, 'validation': {'cats': 1}, 'val': {'cats': 1}},
     r"folder\(s\) \['val'\] beside train/.*val/ -> validation/"),
    ({'train': {'cats': 1, 'dogs': 1}, 'test': {'cats': 1}, 'holdout': {'dogs': 1}},
     r"\['holdout'\] beside train/"),
])
def test_layout_errors_say_what_to_fix(tmp_path, tree, message):
  root = make_tree(str(tmp_path), tree)
  with pytest.raises(DataLayoutError, match=message):
    detect_layout(root)


def test_an_unlabelled_test_folder_is_refused(tmp_path):
  """Kaggle's test/ holds images without class folders: they cannot be evaluated."""
  root = make_tree(str(tmp_path), {'train': {'cats': 1, 'dogs': 1}, 'validation': {'cats': 1}})
  os.makedirs(os.path.join(root, 'test'))
  Image.new('RGB', (8, 8)).save(os.path.join(root, 'test', '1.jpg'))
  with pytest.raises(DataLayoutError, match=r"/test' holds no class folders.*predict.py"):
    detect_layout(root)


def test_missing_root_and_empty_class_fail_clearly(tmp_path):
  with pytest.raises(DataLayoutError, match='does not exist'):
    detect_layout(str(tmp_path / 'nope'))
  root = make_tree(str(tmp_path / 'data'), {'train': {'cats': 1}, 'validation': {'cats': 1}})
  os.makedirs(os.path.join(root, 'train', 'dogs'))
  with pytest.raises(DataLayoutError, match=r"\['dogs'\].*hold no files"):
    detect_layout(root)


# --- images and splits ---------------------------------------------------------------------------

@pytest.mark.parametrize('image_format', ['JPEG', 'PNG', 'GIF', 'BMP'])
def test_inspect_image_reports_size_and_format(image_format):
  data = encode(Image.new('RGB', (31, 17), (200, 10, 10)), image_format)
  properties = image_properties.inspect_image(data, default_budget())
  assert properties[:3] == (17, 31, image_format.lower())


def test_inspect_real_jpeg(real_images):
  with open(real_images['cats'][0], 'rb') as f:
    height, width, image_format = image_properties.inspect_image(f.read(), default_budget())[:3]
  assert image_format == 'jpeg' and height > 100 and width > 100


@pytest.mark.parametrize('data, reason', [
    (b'', 'empty file'),
    (b'just some text\n', 'not a decodable image'),
    (encode(Image.new('RGB', (64, 64)), 'TIFF'), "unsupported image format 'tiff'"),
])
def test_inspect_image_rejects_non_images(data, reason):
  with pytest.raises(image_properties.UnreadableImageError, match=reason):
    image_properties.inspect_image(data, default_budget())


def test_inspect_image_rejects_truncated_jpeg():
  data = encode(Image.effect_noise((128, 128), 60).convert('RGB'))
  with pytest.raises(image_properties.UnreadableImageError):
    image_properties.inspect_image(data[:len(data) // 2], default_budget())


def _config(**overrides):
  config = {'split_folders': ['train', 'validation'], 'test_fraction': 0.2,
            'split_ratios': {'train': 8, 'eval': 1, 'test': 1}}
  config.update(overrides)
  return config


def test_split_assignment_follows_folders_and_hash():
  config = _config()
  assert split_lib.assign_split('train/cats/a.jpg', 'train', config) == 'train'
  paths = [f'validation/cats/{i}.jpg' for i in range(2000)]
  splits = [split_lib.assign_split(p, 'validation', config) for p in paths]
  assert set(splits) == {'eval', 'test'}
  assert 0.17 < splits.count('test') / len(splits) < 0.23
  # Deterministic, by the hash of the path below the split folder.
  assert splits == [split_lib.assign_split(p, 'validation', config) for p in paths]
  assert splits == ['test' if split_lib.hash_fraction(f'cats/{i}.jpg') < 0.2 else 'eval'
                    for i in range(2000)]


def test_a_test_folder_is_the_test_split_and_validation_all_eval():
  config = _config(split_folders=['train', 'validation', 'test'])
  assert {split_lib.assign_split(f'validation/cats/{i}.jpg', 'validation', config)
          for i in range(500)} == {'eval'}
  assert {split_lib.assign_split(f'test/cats/{i}.jpg', 'test', config)
          for i in range(500)} == {'test'}
  assert {split_lib.assign_split(f'train/cats/{i}.jpg', 'train', config)
          for i in range(500)} == {'train'}


def test_without_validation_eval_is_carved_out_of_train_by_its_ratio():
  config = _config(split_folders=['train', 'test'], split_ratios={'train': 6, 'eval': 2, 'test': 2})
  splits = [split_lib.assign_split(f'train/cats/{i}.jpg', 'train', config) for i in range(3000)]
  assert set(splits) == {'train', 'eval'}
  assert 0.22 < splits.count('eval') / 3000 < 0.28  # 2 / (6 + 2)
  assert split_lib.split_sources(['train', 'test'], 0.2, config['split_ratios']) == {
      'train': 'train/ (hash, 75%)', 'eval': 'train/ (hash, 25%)', 'test': 'test/'}


def test_class_folder_split_uses_ratios():
  config = _config(split_ratios={'train': 6, 'eval': 2, 'test': 2})
  splits = [split_lib.assign_split(f'cats/{i}.jpg', '', config) for i in range(3000)]
  assert 0.56 < splits.count('train') / 3000 < 0.64
  assert 0.17 < splits.count('eval') / 3000 < 0.23


# --- the executor over a real tree ---------------------------------------------------------------

# The pipeline's defaults, which ImageExampleGen receives from PipelineConfig.
EXAMPLE_GEN_DEFAULTS = {name: configs.default(name) for name in (
    'test_fraction', 'split_ratios', 'max_skipped_fraction', 'max_image_pixels', 'max_image_bytes')}

def run_executor(tmp_path, root, **component_args):
  """Runs the executor as TFX's launcher would: JSON exec properties, one Examples artifact."""
  component = ImageExampleGen(input_base=root, **{**EXAMPLE_GEN_DEFAULTS, **component_args})
  exec_properties = {
      key: proto_utils.proto_to_json(value) if hasattr(value, 'DESCRIPTOR') else value
      for key, value in component.exec_properties.items()}
  examples = standard_artifacts.Examples()
  examples.uri = str(tmp_path / 'examples')
  executor.Executor().Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
  return examples


def read_split(examples, split):
  pattern = os.path.join(artifact_utils.get_split_uri([examples], split), '*')
  dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type='GZIP')
  return [tf.train.Example.FromString(record.numpy()) for record in dataset]


def _value(example, key):
  feature = example.features.feature[key]
  return (feature.int64_list.value or feature.bytes_list.value)[0]


def test_executor_writes_labelled_examples_in_three_splits(tmp_path):
  root = make_tree(str(tmp_path / 'data'),
                   {'train': {'cats': 5, 'dogs': 4}, 'validation': {'cats': 20, 'dogs': 20}})
  open(os.path.join(root, 'train', 'cats', '.DS_Store'), 'wb').close()  # hidden: ignored
  examples = run_executor(tmp_path, root, test_fraction=0.3)

  assert artifact_utils.decode_split_names(examples.split_names) == ['train', 'eval', 'test']
  train = read_split(examples, 'train')
  assert sorted((_value(e, features.LABEL_NAME_KEY), _value(e, features.LABEL_KEY))
                for e in train) == [(b'cats', 0)] * 5 + [(b'dogs', 1)] * 4
  example = train[0]
  name = _value(example, features.FILENAME_KEY).decode()
  with open(os.path.join(root, name), 'rb') as f:
    assert _value(example, features.IMAGE_KEY) == f.read()
  assert (_value(example, features.HEIGHT_KEY), _value(example, features.WIDTH_KEY)) == (64, 64)
  assert _value(example, features.FORMAT_KEY) == b'jpeg'

  eval_names = {_value(e, features.FILENAME_KEY) for e in read_split(examples, 'eval')}
  test_names = {_value(e, features.FILENAME_KEY) for e in read_split(examples, 'test')}
  assert not eval_names & test_names and len(eval_names) + len(test_names) == 40
  # The documented rule, written out: the first 8 bytes of the SHA-256 of the path below
  # validation/, as a fraction of 2**64, below --test-fraction.
  expected_test = {f'validation/{c}/{f}'.encode() for c in ('cats', 'dogs')
                   for f in os.listdir(os.path.join(root, 'validation', c))
                   if int(hashlib.sha256(f'{c}/{f}'.encode()).hexdigest()[:16], 16) < 0.3 * 2**64}
  assert test_names == expected_test and 0 < len(test_names) < 40

  assert json.loads(examples.get_string_custom_property('class_names')) == ['cats', 'dogs']
  assert examples.get_int_custom_property('files_seen') == 49
  assert examples.get_int_custom_property('files_skipped') == 0
  with open(os.path.join(examples.uri, summary_lib.SUMMARY_FILE)) as f:
    assert summary_lib.describe_splits(json.load(f)) == (
        f'train 9 from train/, eval {len(eval_names)} from validation/ (hash, 70%), '
        f'test {len(test_names)} from validation/ (hash, 30%)')


def test_executor_reads_a_test_folder_as_the_test_split(tmp_path):
  root = make_tree(str(tmp_path / 'data'), {'train': {'cats': 3, 'dogs': 3},
                                            'validation': {'cats': 4, 'dogs': 2},
                                            'test': {'cats': 5, 'dogs': 6}})
  examples = run_executor(tmp_path, root)
  with open(os.path.join(examples.uri, summary_lib.SUMMARY_FILE)) as f:
    summary = json.load(f)
  assert summary['counts'] == {'train': {'cats': 3, 'dogs': 3}, 'eval': {'cats': 4, 'dogs': 2},
                               'test': {'cats': 5, 'dogs': 6}}
  assert summary_lib.describe_splits(summary) == (
      'train 6 from train/, eval 6 from validation/, test 11 from test/')
  assert {_value(e, features.FILENAME_KEY).decode().split('/')[0]
          for e in read_split(examples, 'test')} == {'test'}


def test_executor_counts_and_lists_skipped_files(tmp_path):
  root = make_tree(str(tmp_path / 'data'),
                   {'train': {'cats': 30, 'dogs': 30}, 'validation': {'cats': 20, 'dogs': 20}})
  with open(os.path.join(root, 'train', 'dogs', 'notes.txt'), 'w') as f:
    f.write('not an image')
  examples = run_executor(tmp_path, root, max_skipped_fraction=0.05)
  with open(os.path.join(examples.uri, summary_lib.SUMMARY_FILE)) as f:
    summary = json.load(f)
  assert summary['files_seen'] == 101
  assert summary['images_used'] == 100
  assert summary['skipped'] == [{'path': 'train/dogs/notes.txt',
                                 'reason': summary['skipped'][0]['reason']}]
  assert 'not a decodable image' in summary['skipped'][0]['reason']
  assert summary['counts']['train'] == {'cats': 30, 'dogs': 30}
  assert len(read_split(examples, 'train')) == 60


class _CountingFile:
  """A file handle that adds up the bytes read through it, per path."""

  def __init__(self, handle, path, counts):
    self._handle, self._path, self._counts = handle, path, counts

  def read(self, *args):
    data = self._handle.read(*args)
    self._counts[self._path] = self._counts.get(self._path, 0) + len(data)
    return data

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._handle.close()


def test_executor_skips_files_over_the_byte_budget_unread(tmp_path, monkeypatch):
  root = make_tree(str(tmp_path / 'data'),
                   {'train': {'cats': 10, 'dogs': 10}, 'validation': {'cats': 10, 'dogs': 10}})
  large = os.path.join(root, 'train', 'dogs', 'large.png')
  with open(large, 'wb') as f:
    f.write(encode(Image.effect_noise((200, 200), 60), 'PNG'))
  read = {}
  original_open = fileio.ReadableFile.open
  monkeypatch.setattr(fileio.ReadableFile, 'open', lambda self, *args: _CountingFile(
      original_open(self, *args), self.metadata.path, read))
  examples = run_executor(tmp_path, root, max_skipped_fraction=0.05, max_image_bytes=20_000)
  with open(os.path.join(examples.uri, summary_lib.SUMMARY_FILE)) as f:
    summary = json.load(f)
  assert summary['skipped'] == [{
      'path': 'train/dogs/large.png',
      'reason': f'too large: {os.path.getsize(large)} bytes (limit 20000)'}]
  assert read[large] == 20_001 < os.path.getsize(large) and len(read) == 41


def test_executor_fails_when_too_many_files_are_skipped(tmp_path):
  root = make_tree(str(tmp_path / 'data'),
                   {'train': {'cats': 3, 'dogs': 3}, 'validation': {'cats': 10, 'dogs': 10}})
  with open(os.path.join(root, 'train', 'cats', 'broken.jpg'), 'wb') as f:
    f.write(b'\xff\xd8\xff\xe0 not really a jpeg')
  with pytest.raises(summary_lib.ImageDataError, match=r'1 of 27 files .*train/cats/broken.jpg'):
    run_executor(tmp_path, root)


# --- a messy real-world tree: every kind of bad input, one executor run --------------------------

def _corrupt_body(data: bytes) -> bytes:
  data = bytearray(data)
  data[len(data) // 3:len(data) // 3 + 2000] = b'\x00' * 2000
  return bytes(data[:len(data) * 2 // 3])


# file name under train/<class>/ -> (how to make it from a real JPEG, expected format or skip reason)
MESSY_CASES = {
    'corrupt_body.jpg': (_corrupt_body, 'not a decodable image'),
    'truncated.jpg': (lambda data: data[:len(data) // 2], 'not a decodable image'),
    'empty.jpg': (lambda data: b'', 'empty file'),
    'notes.txt': (lambda data: b'a cat, not a picture\n', 'not a decodable image'),
    'scan.pdf': (lambda data: b'%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n',
                 'not a decodable image'),
    'photo.tiff': (lambda data: encode(Image.open(io.BytesIO(data)), 'TIFF'),
                   "unsupported image format 'tiff'"),
    'photo.png': (lambda data: encode(Image.open(io.BytesIO(data)), 'PNG'), 'png'),
    'anim.gif': (lambda data: encode(Image.open(io.BytesIO(data)), 'GIF'), 'gif'),
    'old.bmp': (lambda data: encode(Image.open(io.BytesIO(data)), 'BMP'), 'bmp'),
    'grey.jpg': (lambda data: encode(Image.open(io.BytesIO(data)).convert('L')), 'jpeg'),
    'print.jpg': (lambda data: encode(Image.open(io.BytesIO(data)).convert('CMYK')), 'jpeg'),
    'alpha.png': (lambda data: encode(Image.open(io.BytesIO(data)).convert('RGBA'), 'PNG'), 'png'),
    'palette.png': (lambda data: encode(Image.open(io.BytesIO(data)).convert('P'), 'PNG'), 'png'),
    'huge.jpg': (lambda data: encode(Image.open(io.BytesIO(data)).resize((8000, 8000))), 'jpeg'),
    'chat noir é 猫.jpg': (lambda data: data, 'jpeg'),
    "it's (1) #2 %20.JPG": (lambda data: data, 'jpeg'),
    '-starts-with-dash.jpeg': (lambda data: data, 'jpeg'),
    # Decompression bombs, refused by the image budget before they are decoded.
    'bomb.png': (lambda data: bombs.png(20000, 20000),
                 'too large: 20000×20000 pixels (limit 200000000)'),
    'bomb.jpg': (lambda data: bombs.jpeg_sized(23170, 23170),
                 'too large: 23170×23170 pixels (limit 200000000)'),
    'bomb.gif': (lambda data: bombs.gif_header(20000, 20000),
                 'too large: 20000×20000 pixels (limit 200000000)'),
}
SKIP_REASONS = ('not a decodable image', 'empty file', 'unsupported image format', 'too large')


@pytest.fixture(scope='module')
def messy_tree(real_images, tmp_path_factory):
  """Real images in train/ and validation/, plus every case above in train/cats and train/dogs,
  hidden files and folders, and a README beside the split folders. Returns (root, summary,
  {relative path: tf.Example})."""
  tmp_path = tmp_path_factory.mktemp('messy')
  root = tmp_path / 'data'
  for split, class_name, paths in [('train', c, real_images[c]) for c in ('cats', 'dogs')] + [
      ('validation', c, real_images[c]) for c in ('cats', 'dogs')]:
    os.makedirs(root / split / class_name)
    for path in paths:
      shutil.copy(path, root / split / class_name)
  for class_name in ('cats', 'dogs'):
    with open(real_images[class_name][0], 'rb') as f:
      data = f.read()
    for name, (make, _) in MESSY_CASES.items():
      (root / 'train' / class_name / name).write_bytes(make(data))
    (root / 'train' / class_name / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  os.makedirs(root / 'train' / 'cats' / '.thumbnails')
  (root / 'train' / 'cats' / '.thumbnails' / 'a.jpg').write_bytes(b'x')
  (root / 'README.md').write_text('cats and dogs')
  examples = run_executor(tmp_path, str(root), max_skipped_fraction=0.5, test_fraction=0.5)
  with open(os.path.join(examples.uri, summary_lib.SUMMARY_FILE)) as f:
    summary = json.load(f)
  by_path = {_value(e, features.FILENAME_KEY).decode(): e
             for split in ('train', 'eval', 'test') for e in read_split(examples, split)}
  return root, summary, examples, by_path


@pytest.mark.parametrize('name', sorted(MESSY_CASES))
def test_each_bad_or_odd_file_has_its_exact_outcome(messy_tree, name):
  _, summary, _, by_path = messy_tree
  expected = MESSY_CASES[name][1]
  skipped = {s['path']: s['reason'] for s in summary['skipped']}
  for class_name in ('cats', 'dogs'):
    path = f'train/{class_name}/{name}'
    if expected.startswith(SKIP_REASONS):
      assert skipped[path].startswith(expected) and path not in by_path
      assert '{{' not in skipped[path] and '0x' not in skipped[path]  # readable, no internals
    else:
      assert path not in skipped
      assert _value(by_path[path], features.FORMAT_KEY).decode() == expected
      assert _value(by_path[path], features.LABEL_NAME_KEY).decode() == class_name


def test_messy_tree_counts_add_up_and_nothing_is_lost(messy_tree):
  root, summary, examples, by_path = messy_tree
  visible = [os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root)
             for f in files if os.path.relpath(d, root).count(os.sep) == 1
             and not f.startswith('.') and '/.' not in d]
  n_bad = sum(r[1].startswith(SKIP_REASONS) for r in MESSY_CASES.values())
  assert summary['files_seen'] == len(visible) == 24 + 2 * len(MESSY_CASES)
  assert summary['files_skipped'] == len(summary['skipped']) == 2 * n_bad
  assert summary['images_used'] == len(by_path) == summary['files_seen'] - summary['files_skipped']
  assert sum(n for split in summary['counts'].values() for n in split.values()) == len(by_path)
  assert summary['ignored'] == ['README.md']
  assert examples.get_int_custom_property('files_skipped') == 2 * n_bad
  huge = by_path['train/cats/huge.jpg']
  assert (_value(huge, features.HEIGHT_KEY), _value(huge, features.WIDTH_KEY)) == (8000, 8000)


def test_nested_folders_inside_a_class_stop_with_a_clear_line(tmp_path):
  root = make_tree(str(tmp_path / 'data'), {'train': {'cats': 1, 'dogs': 1},
                                             'validation': {'cats': 1, 'dogs': 1}})
  os.makedirs(os.path.join(root, 'train', 'cats', 'kittens'))
  detect_layout(root)  # an empty subfolder holds nothing that could be lost
  shutil.copy(os.path.join(SAMPLE_DATA, 'train', 'cats', 'cat_train_013.jpg'),
              os.path.join(root, 'train', 'cats', 'kittens'))
  with pytest.raises(DataLayoutError, match=r'nested inside class folders.*kittens.*move them up'):
    detect_layout(root)


def test_hostile_class_and_file_names_are_data_not_paths(tmp_path):
  """Names from the tree end up in the examples verbatim and never steer where anything is written."""
  root = make_tree(str(tmp_path / 'data'), {'train': {'cats': 2, 'dogs': 2},
                                             'validation': {'cats': 6, 'dogs': 6}})
  hostile = {'cats': '$(touch PWNED); ..', 'dogs': '-rf --no-preserve-root 猫'}
  for split in ('train', 'validation'):
    for old, new in hostile.items():
      os.rename(os.path.join(root, split, old), os.path.join(root, split, new))
  shutil.copy(os.path.join(SAMPLE_DATA, 'train', 'cats', 'cat_train_013.jpg'),
              os.path.join(root, 'train', hostile['cats'], '%2e%2e%2f..jpg'))
  examples = run_executor(tmp_path, root, test_fraction=0.5)
  assert json.loads(examples.get_string_custom_property('class_names')) == sorted(hostile.values())
  names = {_value(e, features.FILENAME_KEY).decode() for e in read_split(examples, 'train')}
  assert f"train/{hostile['cats']}/%2e%2e%2f..jpg" in names
  assert sorted(os.listdir(tmp_path)) == ['data', 'examples']
  written = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / 'examples') for f in files]
  assert written and not any('PWNED' in path or '猫' in path for path in written)
