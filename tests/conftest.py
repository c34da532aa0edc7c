"""Shared fixtures: real images from ../shared when present, small image trees made on the fly."""
import os


import bootstrap  # pylint: disable=unused-import,wrong-import-position
import pytest  # pylint: disable=wrong-import-position,g-bad-import-order

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get('CATS_DOGS_SHARED', os.path.join(os.path.dirname(REPO_ROOT), 'shared'))
REAL_DATA = os.path.join(SHARED, 'datasets', 'cats_and_dogs_filtered')
WEIGHTS_035 = os.path.join(SHARED, 'weights', 'mobilenet_v2_0.35_no_top_imagenet.h5')


def require_shared(path: str, what: str = 'the ../shared folder beside the checkout') -> str:
  """``path`` of ../shared (real images, pretrained weights) or of another thing CI sets up
  (``what``); a skip on a developer's machine without it, a failure under CI=true: CI has them,
  and a test must not go green by skipping what CI should run."""
  if not os.path.exists(path):
    message = f'{path} is not available ({what})'
    if os.environ.get('CI') == 'true':
      pytest.fail(f'{message}; CI=true requires it', pytrace=False)
    pytest.skip(message)
  return path


def require_module(name: str):
  """The module ``name`` (Airflow, in its own virtualenv); a skip where it is not installed, a
  failure under CI=true, whose .ci/run installs it."""
  if os.environ.get('CI') == 'true':
    import importlib  # pylint: disable=g-import-not-at-top
    try:
      return importlib.import_module(name)
    except ImportError as e:
      pytest.fail(f'{name} does not import ({e}); CI=true requires it', pytrace=False)
  return pytest.importorskip(name)


def pytest_collection_modifyitems(items):
  """The end-to-end runs first: under pytest-xdist's worksteal (make test) the first worker starts
  on the longest test at once while the others take the unit tests, instead of it starting last."""
  items.sort(key=lambda item: item.get_closest_marker('e2e') is None)


@pytest.fixture(scope='module')
def real_images():
  """Paths of a few real cat and dog JPEGs from ../shared (require_shared)."""
  require_shared(REAL_DATA)
  return {
      name: [os.path.join(REAL_DATA, 'train', name, f'{name[:-1]}.{i}.jpg') for i in range(6)]
      for name in ('cats', 'dogs')
  }


@pytest.fixture
def weights_035():
  return require_shared(WEIGHTS_035)


TEST_IMAGE_SIZE = 32


@pytest.fixture(scope='session')
def transform_output(tmp_path_factory):
  """A real Transform graph (TFT on Beam) of the project's preprocessing_fn, at 32x32 pixels."""
  import functools  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  import tensorflow_transform.beam as tft_beam  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils  # pylint: disable=g-import-not-at-top
  from components.modules import features, preprocessing  # pylint: disable=g-import-not-at-top
  from tests.trees import SAMPLE_DATA  # pylint: disable=g-import-not-at-top

  raw = []
  for label, name in enumerate(('cats', 'dogs')):
    folder = os.path.join(SAMPLE_DATA, 'train', name)
    for file_name in sorted(os.listdir(folder))[:4]:
      with open(os.path.join(folder, file_name), 'rb') as f:
        raw.append({features.IMAGE_KEY: [f.read()], features.LABEL_KEY: [label],
                    features.LABEL_NAME_KEY: [name.encode()]})
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec({
      features.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
      features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
      features.LABEL_NAME_KEY: tf.io.FixedLenFeature([1], tf.string),
  }))
  out_dir = str(tmp_path_factory.mktemp('transform'))
  from components.modules import image_budget  # pylint: disable=g-import-not-at-top
  from tests.trees import default_budget  # pylint: disable=g-import-not-at-top
  preprocessing_fn = functools.partial(preprocessing.preprocessing_fn, custom_config={
      'image_size': TEST_IMAGE_SIZE, **image_budget.as_settings(default_budget())})
  with tft_beam.Context(temp_dir=os.path.join(out_dir, 'tmp'), force_tf_compat_v1=False):
    transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
    _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
  metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return tft.TFTransformOutput(out_dir)


@pytest.fixture(scope='session')
def saved_model_dir(transform_output, tmp_path_factory):
  """A model saved with the pipeline's serving signatures (MobileNetV2 0.35 at 32 px, random head)."""
  require_shared(WEIGHTS_035)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from components.modules import model as model_lib, model_variants, signatures  # pylint: disable=g-import-not-at-top
  class_names = ['cats', 'dogs']
  model = model_lib.build_model(num_classes=len(class_names), image_size=TEST_IMAGE_SIZE,
                                alpha=0.35, weights=WEIGHTS_035, dropout=0.0, learning_rate=1e-3,
                                model=model_variants.MOBILENET_V2)
  # An untrained head scores every image 50/50; random weights make the outputs distinct.
  logits = model.get_layer('logits')
  kernel = np.random.RandomState(0).normal(0, 1, logits.kernel.shape)
  logits.set_weights([kernel, np.zeros(len(class_names))])
  export_dir = str(tmp_path_factory.mktemp('model'))
  signatures.save_served(model, export_dir,
                         signatures.make_serving_signatures(model, transform_output, class_names))
  return export_dir
