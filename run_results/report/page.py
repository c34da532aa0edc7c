"""The report's HTML: tables, and a page of sections whose PNGs are written beside it and embedded."""
import base64
import html
import os
from typing import List, Sequence

import tensorflow as tf


def _cells(tag: str, values: Sequence[object]) -> str:
  return ''.join(f'<{tag}>{html.escape(str(value))}</{tag}>' for value in values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  return (f'<table><tr>{_cells("th", header)}</tr>'
          + ''.join(f'<tr>{_cells("td", row)}</tr>' for row in rows) + '</table>')


class Page:
  """Sections of HTML and the PNG files they show (written beside the page and embedded in it)."""

  def __init__(self, output_dir: str):
    self.output_dir = output_dir
    self.parts: List[str] = []
    self.pictures: List[str] = []

  def section(self, title: str, *parts: str) -> None:
    self.parts.append(f'<h2>{html.escape(title)}</h2>' + ''.join(parts))

  def picture(self, name: str, png: bytes, alt: str) -> str:
    with tf.io.gfile.GFile(os.path.join(self.output_dir, name), 'wb') as f:
      f.write(png)
    self.pictures.append(name)
    data = base64.b64encode(png).decode('ascii')
    return (f'<p><a href="{name}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(alt)}"></a></p>')

  def html(self, title: str) -> str:
    style = ('body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}'
             'table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;'
             'padding:2px 8px;text-align:left}img{max-width:100%}.bad{color:#b00}.ok{color:#070}')
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{style}</style></head><body><h1>{html.escape(title)}</h1>'
            + '\n'.join(self.parts) + '</body></html>\n')
