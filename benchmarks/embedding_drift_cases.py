"""Image sets for benchmarks/embedding_drift_benchmark.py, made from the real photos or from
nothing: semantic shifts that keep the photos' encoding, and pictures that are neither cats nor dogs."""
import os
from typing import List

import numpy as np
from PIL import Image

CLASSES = ('cats', 'dogs')
SAMPLE_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data',
                           'sample')


# --- semantic shifts that keep the pixel statistics --------------------------------------------

def _convert_keeping_encoding(source: str, target: str, per_class: int, change) -> str:
  """``target/<class>/`` holding the first images of ``source/<class>/``, each passed through
  ``change`` and saved as a JPEG with the original's quantization tables and chroma subsampling,
  so that its file size stays that of a photo of the same camera."""
  from PIL import JpegImagePlugin  # pylint: disable=g-import-not-at-top
  for class_name in CLASSES:
    os.makedirs(os.path.join(target, class_name))
    for name in sorted(os.listdir(os.path.join(source, class_name)))[:per_class]:
      with Image.open(os.path.join(source, class_name, name)) as image:
        changed = change(image.convert('RGB'))
        changed.save(os.path.join(target, class_name, name), 'JPEG', qtables=image.quantization,
                     subsampling=JpegImagePlugin.get_sampling(image))
  return target


def upside_down(source: str, target: str, per_class: int) -> str:
  """Every photo turned by 180 degrees: a camera mounted the other way round."""
  return _convert_keeping_encoding(source, target, per_class, lambda im: im.rotate(180))


def close_up(source: str, target: str, per_class: int) -> str:
  """The centre 60 % of each side, enlarged back to the photo's size: a closer camera."""

  def crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    box = (int(w * 0.2), int(h * 0.2), int(w * 0.8), int(h * 0.8))
    return image.crop(box).resize((w, h), Image.BICUBIC)

  return _convert_keeping_encoding(source, target, per_class, crop)


def swapped_quarters(source: str, target: str, per_class: int) -> str:
  """Each photo's quarters swapped diagonally: the same pixels, a scrambled scene."""

  def swap(image: Image.Image) -> Image.Image:
    w, h = image.size[0] // 2 * 2, image.size[1] // 2 * 2
    image, out = image.crop((0, 0, w, h)), Image.new('RGB', (w, h))
    for (x, y), (tx, ty) in (((0, 0), (1, 1)), ((1, 1), (0, 0)), ((1, 0), (0, 1)), ((0, 1), (1, 0))):
      out.paste(image.crop((x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2)),
                (tx * w // 2, ty * h // 2))
    return out

  return _convert_keeping_encoding(source, target, per_class, swap)


SHIFTS = {'upside_down': upside_down, 'close_up': close_up, 'swapped_quarters': swapped_quarters}


# --- pictures that are neither cats nor dogs -----------------------------------------------------

def textures(target: str, count: int, seed: int = 0) -> List[str]:
  """Noise, stripes, checkerboards and colour gradients, as JPEGs of photo-like sizes."""
  rng = np.random.default_rng(seed)
  os.makedirs(target)
  paths = []
  for i in range(count):
    h, w = int(rng.integers(300, 500)), int(rng.integers(300, 500))
    y, x = np.mgrid[0:h, 0:w]
    kind = i % 4
    if kind == 0:
      pixels = rng.integers(0, 256, (h, w, 3))
    elif kind == 1:
      period, angle = rng.uniform(8, 60), rng.uniform(0, np.pi)
      wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) / period * 2 * np.pi)[..., None]
      pixels = 127 + 120 * wave * rng.uniform(0.3, 1, 3)
    elif kind == 2:
      size = int(rng.integers(10, 60))
      pixels = (((x // size + y // size) % 2)[..., None] * rng.integers(0, 256, 3)
                + rng.integers(0, 128, 3))
    else:
      pixels = (x[..., None] / w * rng.integers(0, 256, 3) + y[..., None] / h
                * rng.integers(0, 256, 3)) / 2
    path = os.path.join(target, f'texture_{i}.jpg')
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    paths.append(path)
  return paths


def shuffled_tiles(target: str, files: List[str], seed: int = 0) -> List[str]:
  """Photos cut into 8 x 8 tiles put back in random order: photo pixels, no animal."""
  rng = np.random.default_rng(seed)
  os.makedirs(target)
  paths = []
  for i, source in enumerate(files):
    with Image.open(source) as image:
      pixels = np.asarray(image.convert('RGB'))
    th, tw = pixels.shape[0] // 8, pixels.shape[1] // 8
    tiles = [pixels[r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(8) for c in range(8)]
    order = rng.permutation(64)
    rows = [np.concatenate([tiles[order[r * 8 + c]] for c in range(8)], axis=1) for r in range(8)]
    path = os.path.join(target, f'tiles_{i}.jpg')
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, quality=90)
    paths.append(path)
  return paths


def sample_shapes() -> List[str]:
  """The project's own synthetic sample images (triangles and circles)."""
  return [os.path.join(root, name) for root, _, names in os.walk(SAMPLE_DATA)
          for name in sorted(names) if name.endswith('.jpg')]
