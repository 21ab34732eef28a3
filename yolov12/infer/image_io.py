"""Read image files and normalise in-memory images to (H, W, 3) BGR uint8, with errors that say what is wrong.

Every decode of an untrusted file goes through :func:`check_before_decode` first: it reads the format, size,
channels and bit depth from the header (no pixels) and refuses what would decode to more than ``max_pixels`` pixels
or ``max_bytes`` bytes. Pixels alone are not enough: a 16-bit image takes twice the memory of an 8-bit one with the
same pixels, and deflate packs a flat 16-bit PNG of tens of megapixels into a few hundred KB. Prediction sources
(:func:`read_image`, :func:`decode_image_bytes`) and dataset images (:mod:`yolov12.data.images`) use it.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageMode

logger = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 20000 * 20000  # refuse larger images: decoding one would take > 1.2 GB
MAX_DECODED_BYTES = 4 * MAX_IMAGE_PIXELS
"""Default limit on the bytes an image decodes to: 1.6 GB, an 8-bit RGBA image of :data:`MAX_IMAGE_PIXELS`, so 8-bit
images stay limited by their pixels alone and deeper ones by the bytes they take. A caller that lowers
``max_pixels`` keeps that rule with ``max_bytes=4 * max_pixels``.

Read when a check runs, so ``yolov12.infer.image_io.MAX_DECODED_BYTES = ...`` raises it for every reader in the
process (as ``PIL.Image.MAX_IMAGE_PIXELS`` does for Pillow); ``max_bytes=`` raises it for one call."""
HEADER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "PPM")  # whose headers are read before decoding
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # BGR at the file's depth, EXIF orientation applied
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # IHDR colour type -> samples per pixel (3: palette index)
_RAISE_HINT = "raise the limit with max_bytes= or yolov12.infer.image_io.MAX_DECODED_BYTES"


class SourceError(ValueError):
    """A prediction source cannot be read: missing, empty, corrupt, too large or of an unsupported type."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: format, size and samples as stored (before EXIF orientation)."""

    format: str
    width: int
    height: int
    channels: int  # samples per pixel as stored (a palette index counts as 1)
    bits: int  # bits per sample as stored
    buffers: int = 1  # image-sized buffers the decoder fills (4 for an animated PNG: OpenCV composes its frames)

    @property
    def pixels(self) -> int:
        """width x height."""
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """Bytes the decoder fills: pixels x channels x bytes per sample (x buffers).

        Channels count at least 3 (the decoders expand gray and palette images to BGR); a sample takes the power of
        two bytes that holds its bits (1-bit samples decode to 8 bits, 12-bit ones to 16).
        """
        stored = max(1, -(-self.bits // 8))
        return self.pixels * max(self.channels, 3) * (1 << (stored - 1).bit_length()) * self.buffers

    def describe(self) -> str:
        """``PNG 4000x3000, 3 channels of 16 bits``."""
        plural = "s" if self.channels != 1 else ""
        return f"{self.format} {self.width}x{self.height}, {self.channels} channel{plural} of {self.bits} bits"


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int | None = None) -> np.ndarray:
    """Decode an image file -> (H, W, 3) BGR uint8 (see :func:`decode_image_bytes`).

    ``max_bytes`` limits what the file decodes to (None: :data:`MAX_DECODED_BYTES` at call time); a file larger than
    that is refused before it is read.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        limit = decoded_byte_limit(max_bytes)
        if size > limit:
            raise SourceError(f"image {path} is a {size}-byte file, above the limit of {limit} bytes; {_RAISE_HINT}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"no such file: {path}") from None
    except OSError as exc:
        raise SourceError(f"cannot read file {path}: {exc}") from None
    return decode_image_bytes(data, str(path), max_pixels, max_bytes)


def decode_image_bytes(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS,
                       max_bytes: int | None = None) -> np.ndarray:
    """Decode the bytes of an image file -> (H, W, 3) BGR uint8; ``name`` is used in errors.

    The header is checked first (:func:`check_before_decode`), so an image over ``max_pixels`` pixels or
    ``max_bytes`` decoded bytes is refused without allocating it. OpenCV then decodes it: EXIF orientation is
    applied, alpha is dropped, grayscale is expanded and 16-bit images are scaled to 8 bits.

    Raises:
        SourceError: not a PNG, JPEG, BMP, TIFF, WebP or PPM image, corrupt, or over a limit.

    Example:
        >>> decode_image_bytes(Path("bus.jpg").read_bytes(), "bus.jpg").shape  # doctest: +SKIP
        (1080, 810, 3)
    """
    if not data:
        raise SourceError(f"cannot decode image {name}: the file is empty, not a valid image")
    check_before_decode(io.BytesIO(data), name, max_pixels, max_bytes)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), _DECODE_FLAGS)
    except cv2.error:
        image = None
    if image is None:
        raise SourceError(f"cannot decode image {name}: the file is not a valid image (corrupt or unsupported format)")
    check_decoded(image, name, max_pixels, max_bytes)
    return to_bgr_uint8(image, name)


def check_before_decode(stream: BinaryIO, name: str, max_pixels: int = MAX_IMAGE_PIXELS,
                        max_bytes: int | None = None) -> ImageHeader:
    """The check every decoder runs first: the header of the image in ``stream`` within both limits.

    Args:
        stream: the file (binary, seekable), read from its start; only headers are read (of a PNG, every chunk's).
        name: the file or upload name, for errors.
        max_pixels: the most pixels an image may have.
        max_bytes: the most bytes it may decode to (None: :data:`MAX_DECODED_BYTES` at call time).

    Raises:
        SourceError: one line naming the image, what it is and the limit it breaks.
    """
    header = read_header(stream, name)
    check_header_limits(header, name, max_pixels, max_bytes)
    return header


def check_header_limits(header: ImageHeader, name: str, max_pixels: int = MAX_IMAGE_PIXELS,
                        max_bytes: int | None = None, raise_hint: str = _RAISE_HINT) -> None:
    """Raise :class:`SourceError` when a read header is over ``max_pixels`` pixels or ``max_bytes`` decoded bytes;
    ``raise_hint`` ends the byte-limit message (how the caller's user raises that limit)."""
    check_pixel_limit((header.width, header.height), name, max_pixels)
    limit = decoded_byte_limit(max_bytes)
    if header.decoded_bytes > limit:
        raise SourceError(
            f"image {name} ({header.describe()}) decodes to {header.decoded_bytes} bytes "
            f"({_megabytes(header.decoded_bytes)}), above the limit of {limit} bytes ({_megabytes(limit)}); "
            f"downscale it or save it with 8-bit samples, or {raise_hint}"
        )


def read_header(stream: BinaryIO, name: str) -> ImageHeader:
    """Format, size, channels and bits per sample from the header of the image in ``stream``; no pixel is decoded.

    Pillow's plugins for :data:`HEADER_FORMATS` parse the header (``PIL.Image.open`` would raise its own
    decompression-bomb error, about 179 Mpx, before telling the size); PNG's bit depth is read from IHDR, because
    Pillow reports a 16-bit RGB PNG as mode ``RGB``.

    Raises:
        SourceError: the file is not one of those formats, or its header is corrupt.
    """
    Image.init()
    stream.seek(0)
    prefix = stream.read(32)
    fmt = _sniff(prefix)
    if fmt is None:
        raise SourceError(f"cannot decode image {name}: the file is not a valid image (corrupt or unsupported format): "
                          f"not one of {', '.join(HEADER_FORMATS)}")
    factory = Image.OPEN[fmt][0]
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd metadata; the header is what matters here
            return _header_of(factory(stream, name), stream, prefix)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken headers; all mean "not an image"
        reason = f"{type(exc).__name__}: {exc}"[:200]
        raise SourceError(f"cannot decode image {name}: the file is not a valid image (corrupt or unsupported format): "
                          f"its {fmt} header or structure is corrupt ({reason})") from None


def _sniff(prefix: bytes) -> str | None:
    for fmt in HEADER_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        recognised = factory is not None and (accept is None or accept(prefix[:16]))
        if recognised and not isinstance(recognised, str):  # a str is Pillow's "known but unsupported"
            return fmt
    return None


def _header_of(image: Image.Image, stream: BinaryIO, prefix: bytes) -> ImageHeader:
    """The header of an opened (not loaded) Pillow image; PNG and TIFF say their depth, others their mode."""
    width, height = (int(side) for side in image.size)
    mode = ImageMode.getmode(image.mode)
    channels, bits, buffers = len(mode.bands), 8 * int(mode.typestr[-1]), 1
    if image.format == "PNG":
        channels, bits, buffers = _png_details(stream, prefix)
    elif image.format == "TIFF":
        tags = image.tag_v2  # type: ignore[attr-defined]
        samples = tags.get(277)
        depth = tags.get(258)
        channels = int(samples) if samples is not None else channels
        bits = max(int(b) for b in (depth if isinstance(depth, tuple) else (depth,))) if depth else 8
    elif image.format == "PPM" and image.mode != "F":
        bits = max(bits, 16)  # Pillow does not tell the maxval: a PPM/PGM may hold 16-bit samples
    if width <= 0 or height <= 0 or channels <= 0 or bits <= 0:
        raise ValueError(f"the header says {width}x{height} with {channels} channels of {bits} bits")
    return ImageHeader(str(image.format), width, height, channels, bits, buffers)


def _png_details(stream: BinaryIO, prefix: bytes) -> tuple[int, int, int]:
    """(channels, bits, buffers) of a PNG, from IHDR, once every chunk is known to fit in the file.

    OpenCV's PNG reader allocates and zero-fills each chunk's declared length before reading it: a 107-byte file
    declaring a 1.2 GB chunk cost 1.5 GB and 2.5 s. Such a file is refused here. An animated PNG (``acTL``) is
    composed in three more image-sized buffers.
    """
    if prefix[12:16] != b"IHDR":
        raise ValueError("the first chunk is not IHDR")
    bit_depth, colour_type = prefix[24], prefix[25]
    size = stream.seek(0, io.SEEK_END)
    position, animated = 8, False
    while position + 8 <= size:  # fewer bytes left: a trailing fragment the decoders stop at
        stream.seek(position)
        length, kind = struct.unpack(">I4s", stream.read(8))
        end = position + 12 + length
        if end > size:
            raise ValueError(f"chunk {kind.decode('latin-1')!r} at byte {position} declares {length} bytes, but the "
                             f"file ends {size - position - 8} bytes after its header")
        animated |= kind == b"acTL"
        if kind == b"IEND":
            break
        position = end
    return _PNG_CHANNELS[colour_type], bit_depth, 4 if animated else 1


def check_decoded(image: np.ndarray, name: str, max_pixels: int = MAX_IMAGE_PIXELS,
                  max_bytes: int | None = None) -> None:
    """Raise :class:`SourceError` when a decoder returned more than the header promised and the limits allow."""
    check_pixel_limit((image.shape[1], image.shape[0]), name, max_pixels)
    limit = decoded_byte_limit(max_bytes)
    if image.nbytes > limit:
        raise SourceError(f"image {name} decoded to {image.nbytes} bytes (shape {image.shape}, {image.dtype}), above "
                          f"the limit of {limit} bytes; {_RAISE_HINT}")


def check_pixel_limit(size: tuple[int, int], name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise :class:`SourceError` when a (width, height) image has more than ``max_pixels`` pixels."""
    width, height = size
    if width * height > max_pixels:
        raise SourceError(
            f"image {name} is {width}x{height} ({width * height} pixels), above the limit of {max_pixels} pixels "
            f"({_limit_text(max_pixels)}); downscale or tile it first"
        )


def decoded_byte_limit(max_bytes: int | None = None) -> int:
    """``max_bytes``, or :data:`MAX_DECODED_BYTES` as it is now when None."""
    return MAX_DECODED_BYTES if max_bytes is None else max_bytes


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _limit_text(max_pixels: int) -> str:
    side = int(max_pixels ** 0.5)
    return f"{side}x{side}" if side * side == max_pixels else f"{max_pixels} pixels"


def to_bgr_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """A numpy image -> contiguous (H, W, 3) BGR uint8.

    Accepts (H, W) or (H, W, 1) grayscale, (H, W, 3) BGR and (H, W, 4) BGRA (alpha dropped); uint8, uint16 (scaled
    by 255/65535 with rounding) or float in [0, 1].
    """
    if not isinstance(image, np.ndarray):
        raise SourceError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise SourceError(f"{name}: the image is empty (shape {image.shape})")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
        raise SourceError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    image = _to_uint8(image, name)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:  # rounds x * 255 / 65535 as np.rint would, without a float copy of the image
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if np.issubdtype(image.dtype, np.floating):
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        if low < 0.0 or high > 1.0:
            raise SourceError(f"{name}: a float image must be in [0, 1], got values in [{low:g}, {high:g}]")
        return np.rint(np.nan_to_num(image, nan=0.0) * 255.0).astype(np.uint8)
    raise SourceError(f"{name}: unsupported pixel type {image.dtype}; use uint8, uint16 or float in [0, 1]")
