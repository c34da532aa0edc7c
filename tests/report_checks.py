"""Checks that a run report renders: well-formed HTML whose every picture is a real, non-blank PNG."""
import base64
import html.parser
import io
import os
import shutil
import subprocess
from typing import List

import numpy as np
from PIL import Image


class _Parser(html.parser.HTMLParser):

  def __init__(self):
    super().__init__()
    self.images: List[str] = []
    self.links: List[str] = []
    self.headings: List[str] = []
    self.open_tags: List[str] = []
    self._in_heading = False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'img':
      self.images.append(attrs['src'])
    elif tag == 'a':
      self.links.append(attrs['href'])
    elif tag in ('table', 'tr', 'p', 'ul', 'h1', 'h2', 'h3'):
      self.open_tags.append(tag)
    self._in_heading = tag in ('h2', 'h3')

  def handle_endtag(self, tag):
    if tag in ('table', 'tr', 'p', 'ul', 'h1', 'h2', 'h3'):
      assert self.open_tags and self.open_tags.pop() == tag, f'unbalanced </{tag}>'
    self._in_heading = False

  def handle_data(self, data):
    if self._in_heading:
      self.headings.append(data)


def non_blank_png(data: bytes) -> Image.Image:
  image = Image.open(io.BytesIO(data))
  assert image.format == 'PNG'
  pixels = np.asarray(image.convert('L'), dtype=np.float32)
  assert image.width >= 100 and image.height >= 50, image.size
  assert pixels.std() > 5, 'blank picture'
  return image


def assert_report_renders(path: str) -> List[str]:
  """Parses the report; every embedded picture must be a non-blank PNG equal to the file it links
  to beside the page. Returns the section headings."""
  with open(path, encoding='utf-8') as f:
    parser = _Parser()
    parser.feed(f.read())
  assert not parser.open_tags, f'unclosed tags {parser.open_tags}'
  assert parser.images, 'no pictures'
  for src, href in zip(parser.images, [l for l in parser.links if l.endswith('.png')]):
    assert src.startswith('data:image/png;base64,')
    data = base64.b64decode(src.split(',', 1)[1])
    non_blank_png(data)
    with open(os.path.join(os.path.dirname(path), href), 'rb') as f:
      assert f.read() == data
  return parser.headings


def browser_screenshot(path: str, out_png: str) -> bool:
  """Renders the page in headless Chromium when it is installed; False when it is not."""
  browser = shutil.which('chromium') or shutil.which('chromium-browser')
  if not browser:
    return False
  subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                  f'--screenshot={out_png}', '--window-size=1200,4000', f'file://{path}'],
                 check=True, capture_output=True, timeout=120)
  return True
