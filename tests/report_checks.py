"""Checks that a run report renders: well-formed HTML whose every picture is a real, non-blank PNG."""
import base64
import html.parser
import io
import os
import shutil
import subprocess
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image
import pytest


class _Parser(html.parser.HTMLParser):

  def __init__(self):
    super().__init__()
    # (embedded picture, the href of the link around it or None), and every link's href.
    self.images: List[Tuple[str, Optional[str]]] = []
    self.links: List[str] = []
    self._link: Optional[str] = None
    self.headings: List[str] = []
    self.open_tags: List[str] = []
    self._in_heading = False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'img':
      self.images.append((attrs['src'], self._link))
    elif tag == 'a':
      self.links.append(attrs['href'])
      self._link = attrs['href']
    elif tag in ('table', 'tr', 'p', 'ul', 'h1', 'h2', 'h3'):
      self.open_tags.append(tag)
    self._in_heading = tag in ('h2', 'h3')

  def handle_endtag(self, tag):
    if tag == 'a':
      self._link = None
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
  png_links = [link for link in parser.links if link.endswith('.png')]
  assert len(png_links) == len(parser.images), f'{len(parser.images)} pictures, links {png_links}'
  for src, href in parser.images:
    assert href and href.endswith('.png'), f'a picture without a link to its file: {src[:60]}'
    assert src.startswith('data:image/png;base64,')
    data = base64.b64decode(src.split(',', 1)[1])
    non_blank_png(data)
    with open(os.path.join(os.path.dirname(path), href), 'rb') as f:
      assert f.read() == data, href
  return parser.headings


def browser_screenshot(path: str, out_png: str) -> None:
  """Renders the page in headless Chromium. Without Chromium the test is skipped, and said so,
  on a developer's machine; in CI (CI=true, where .ci/run installs it) it fails."""
  browser = shutil.which('chromium') or shutil.which('chromium-browser')
  if not browser:
    message = 'Chromium is not installed, so the report was not rendered in a browser'
    if os.environ.get('CI') == 'true':
      pytest.fail(f'{message}; CI must have it (.ci/run installs the Debian package chromium)')
    pytest.skip(f'{message} (apt-get install chromium)')
  subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                  f'--screenshot={out_png}', '--window-size=1200,4000', f'file://{path}'],
                 check=True, capture_output=True, timeout=120)
