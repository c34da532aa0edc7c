"""Small image trees and encoded images made on the fly for tests."""
import io
import os
import shutil

from PIL import Image
from PIL import ImageEnhance

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DATA = os.path.join(REPO_ROOT, 'data', 'sample')


def default_budget():
  """PipelineConfig's image budget (image_budget.ImageBudget), what the pipeline enforces."""
  from run_results.served_models import image_budget_of  # pylint: disable=g-import-not-at-top
  return image_budget_of(None)


def encode(image: Image.Image, image_format: str = 'JPEG') -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, image_format)
  return buffer.getvalue()


def make_tree(root: str, per_split: dict, source_dir: str = SAMPLE_DATA) -> str:
  """Copies ``per_split[split][class]`` images of the sample data set into ``root`` (the last
  ones of validation/ for a split folder that the source lacks, e.g. test/)."""
  for split, per_class in per_split.items():
    source_split = split if os.path.isdir(os.path.join(source_dir, split)) else 'validation'
    for class_name, count in per_class.items():
      src = os.path.join(source_dir, source_split, class_name)
      dst = os.path.join(root, split, class_name)
      os.makedirs(dst, exist_ok=True)
      names = sorted(os.listdir(src))
      for name in (names[:count] if source_split == split else names[-count:]):
        shutil.copy(os.path.join(src, name), dst)
  return root


def darkened_copy(source: str, target: str) -> str:
  """A copy of the tree ``source`` with every image at 40 % of its brightness: drifted data."""
  for folder, _, files in os.walk(source):
    os.makedirs(folder.replace(source, target), exist_ok=True)
    for name in files:
      with Image.open(os.path.join(folder, name)) as image:
        ImageEnhance.Brightness(image).enhance(0.4).save(
            os.path.join(folder.replace(source, target), name))
  return target


def grayscale_copy(source: str, target: str) -> str:
  """A copy of the tree ``source`` with every image in shades of grey (still RGB files): the
  colours that tell the sample's classes apart are gone, their shapes stay."""
  for folder, _, files in os.walk(source):
    os.makedirs(folder.replace(source, target), exist_ok=True)
    for name in files:
      with Image.open(os.path.join(folder, name)) as image:
        image.convert('L').convert('RGB').save(os.path.join(folder.replace(source, target), name))
  return target
