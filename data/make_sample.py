"""Makes the embedded sample data set ``data/sample`` (synthetic, NOT the real cats-vs-dogs task).

It exists to show the pipeline's mechanics offline in a few minutes: two classes of small JPEGs that
any model separates easily. "cats" are warm-coloured pictures with triangles (ears), "dogs" are
cool-coloured pictures with circles. Deterministic: re-running writes byte-identical files.

    python -m data.make_sample [--out data/sample]
"""
import argparse
import os
import random

from PIL import Image, ImageDraw, ImageFilter

IMAGE_SIZE = 64
# Images per split folder and class: train/ and validation/ like the tutorial's archive.
COUNTS = {'train': 60, 'validation': 50}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sample')


def _colour(rng: random.Random, warm: bool):
  if warm:
    return (rng.randint(150, 255), rng.randint(60, 150), rng.randint(0, 60))
  return (rng.randint(0, 60), rng.randint(80, 170), rng.randint(150, 255))


def draw_image(rng: random.Random, class_name: str) -> Image.Image:
  warm = class_name == 'cats'
  background = tuple(int(c * 0.5) for c in _colour(rng, warm))
  image = Image.new('RGB', (IMAGE_SIZE, IMAGE_SIZE), background)
  draw = ImageDraw.Draw(image)
  for _ in range(rng.randint(2, 4)):
    x, y = rng.randint(0, IMAGE_SIZE - 20), rng.randint(0, IMAGE_SIZE - 20)
    size = rng.randint(12, 28)
    if warm:
      draw.polygon([(x, y + size), (x + size // 2, y), (x + size, y + size)], fill=_colour(rng, True))
    else:
      draw.ellipse([x, y, x + size, y + size], fill=_colour(rng, False))
  return image.filter(ImageFilter.GaussianBlur(0.6))


def make_sample(out: str = DEFAULT_OUT, seed: int = 0) -> int:
  rng = random.Random(seed)
  written = 0
  for split, count in COUNTS.items():
    for class_name in ('cats', 'dogs'):
      folder = os.path.join(out, split, class_name)
      os.makedirs(folder, exist_ok=True)
      for i in range(count):
        path = os.path.join(folder, f'{class_name[:-1]}_{split}_{i:03d}.jpg')
        draw_image(rng, class_name).save(path, 'JPEG', quality=80)
        written += 1
  return written


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=DEFAULT_OUT, help='output folder (default: %(default)s)')
  args = parser.parse_args()
  print(f'wrote {make_sample(args.out)} images under {args.out}')


if __name__ == '__main__':
  main()
