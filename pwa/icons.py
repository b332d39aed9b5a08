"""The app icons, drawn here (no third-party artwork): a letter on the brand colour.

PNG is written by hand with zlib, so no imaging library is needed. The glyph stays inside the
central 60 % of the square, which keeps it whole in the "maskable" safe zone (a circle of 80 %).
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

# A 5 x 7 bitmap of "R"; each string is one row, "#" is ink.
GLYPH_R = (
    "####.",
    "#...#",
    "#...#",
    "####.",
    "#.#..",
    "#..#.",
    "#...#",
)

SIZES = (192, 512)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack("!I", len(data)) + body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """Encode RGB rows (3 bytes a pixel) as a PNG file."""
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


@lru_cache(maxsize=8)
def app_icon(size: int, background: str, foreground: str = "#ffffff") -> bytes:
    """A square icon of ``size`` pixels: the glyph centred on a full-bleed background."""
    bg, fg = bytes(hex_to_rgb(background)), bytes(hex_to_rgb(foreground))
    cols, lines = len(GLYPH_R[0]), len(GLYPH_R)
    cell = max(1, int(size * 0.6) // lines)  # glyph height is 60 % of the icon
    left = (size - cols * cell) // 2
    top = (size - lines * cell) // 2
    blank = bg * size
    rows = []
    for y in range(size):
        gy = (y - top) // cell if y >= top else -1
        if 0 <= gy < lines:
            row = bytearray(blank)
            for gx, ink in enumerate(GLYPH_R[gy]):
                if ink == "#":
                    start = (left + gx * cell) * 3
                    row[start:start + cell * 3] = fg * cell
            rows.append(bytes(row))
        else:
            rows.append(blank)
    return encode_png(size, size, rows)
