"""Decompression bombs and other images whose header is what matters, made in a few milliseconds.

A bomb is small on the wire and huge decoded: ``png`` writes a valid PNG of any size whose pixels
are all 0 (20000 x 20000 grey: 0.4 MB; 65535 x 65535 RGBA: 17 MB) without holding its pixels.
The other makers patch the size fields of small files made by Pillow, so that TensorFlow's decoder
sees the size they declare (and fails or succeeds on what follows, as a real file would).
"""
import io
import struct
import zlib

from PIL import Image

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (8 bits each)
GREY, RGB, RGBA = 0, 2, 6


def _chunk(kind: bytes, data: bytes) -> bytes:
  return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_header(width: int, height: int, color_type: int = GREY) -> bytes:
  """Signature and IHDR only: the size, and no pixels."""
  return b'\x89PNG\r\n\x1a\n' + _chunk(
      b'IHDR', struct.pack('>IIBBBBB', width, height, 8, color_type, 0, 0, 0))


def png(width: int, height: int, color_type: int = GREY) -> bytes:
  """A valid PNG of black (transparent for RGBA) pixels. Each row is the same, and after a full
  flush zlib writes the same bytes for it, so one row is compressed and its bytes repeated; the
  Adler-32 of n zero bytes is n mod 65521 << 16 | 1."""
  row = bytes(1 + width * _PNG_CHANNELS[color_type])  # filter type 0, then the samples
  compressor = zlib.compressobj(9)
  first = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
  repeated = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
  assert repeated == compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
  adler = (len(row) * height % 65521) << 16 | 1
  final = b'\x01\x00\x00\xff\xff'  # an empty stored block, the last
  stream = first + repeated * (height - 1) + final + struct.pack('>I', adler)
  return png_header(width, height, color_type) + _chunk(b'IDAT', stream) + _chunk(b'IEND', b'')


def encode(image: Image.Image, image_format: str, **options) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def jpeg_sized(width: int, height: int, mode: str = 'L', **options) -> bytes:
  """A 16 x 16 JPEG whose frame header (SOFn) says ``width`` x ``height``: libjpeg decodes the
  16 x 16 pixels it has and fills the rest (a ~300-byte file becomes width x height x 3 bytes)."""
  data = bytearray(encode(Image.new(mode, (16, 16), 128), 'JPEG', **options))
  sof = next(i for i in range(2, len(data) - 1)
             if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
  data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
  return bytes(data)


def gif_frames(sizes, screen=None) -> bytes:
  """An animated GIF with one frame per (width, height) in ``sizes``, on a logical screen of
  ``screen`` (default: the first frame's size), each frame a different colour."""
  frames = []
  for k, size in enumerate(sizes):
    frame = Image.new('P', size, k)
    frame.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    frames.append(frame)
  data = bytearray(encode(frames[0], 'GIF', save_all=True, append_images=frames[1:],
                          optimize=False, disposal=1))
  data[6:10] = struct.pack('<HH', *(screen or sizes[0]))
  return bytes(data)


def gif_header(width: int, height: int) -> bytes:
  """A GIF whose one image descriptor says ``width`` x ``height``, with 1 byte of LZW data."""
  return (b'GIF89a' + struct.pack('<HHBBB', width, height, 0x80, 0, 0) + bytes(6)
          + b'\x2c' + struct.pack('<HHHHB', 0, 0, width, height, 0) + b'\x02\x01\x44\x00\x3b')


def bmp_sized(width: int, height: int) -> bytes:
  """A 24-bit BMP of ``width`` x |``height``| black pixels (negative: stored top-down)."""
  data = bytearray(encode(Image.new('RGB', (width, abs(height))), 'BMP'))
  data[22:26] = struct.pack('<i', height)
  return bytes(data)
