"""Photos from the issue folder: read, scale and re-encode them for the e-mail and the web edition.

An article may use `![alt](foto.jpg)` with the file next to it. The file is scaled (Pillow) to at
most twice the e-mail column width, re-encoded without its metadata (a phone photo's EXIF holds
the place it was taken) and named after its content, so a changed photo gets a new address.
The same input always gives the same bytes. Every problem is a ContentError at the article's line.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nieuwsbrief.errors import ContentError
from nieuwsbrief.i18n import _

# The e-mail body is 600 px wide with 24 px padding each side (templates/email.mjml.j2).
EMAIL_COLUMN_WIDTH = 552
MAX_FILE_WIDTH = 2 * EMAIL_COLUMN_WIDTH  # sharp on screens with two pixels per CSS pixel
MAX_IMAGE_BYTES = 1_000_000  # after scaling; a larger one makes the e-mail slow to open
MAX_SOURCE_BYTES = 30_000_000  # bounded input: refuse before reading a huge file
MAX_SOURCE_PIXELS = 60_000_000
JPEG_QUALITY = 85
_NAME_RE = re.compile(r"[^a-z0-9]+")
_cache: dict[tuple[Path, int, int], ProcessedImage] = {}
_CACHE_SIZE = 64


@dataclass(frozen=True)
class ProcessedImage:
    """A local image as the site serves it."""

    name: str  # content-hashed file name, e.g. "kantoor-3f2a9c1b0d4e.jpg"
    data: bytes
    width: int  # of the file, in pixels
    height: int

    @property
    def display_width(self) -> int:
        """Return the width the e-mail and the web page show it at (CSS pixels)."""
        return min(self.width, EMAIL_COLUMN_WIDTH)

    @property
    def display_height(self) -> int:
        """Return the height that keeps the aspect ratio at `display_width`."""
        return max(1, round(self.height * self.display_width / self.width))


def is_local(src: str) -> bool:
    """Tell whether an image address names a file (next to the article) rather than a URL."""
    if not src or src.startswith(("//", "#")):
        return False
    return not urlsplit(src).scheme


def local_image_path(src: str, folder: Path, where: Path, line: int | None) -> Path:
    """Return the file a local image address names, which must be inside the issue folder."""
    relative = Path(unquote(urlsplit(src).path))
    if relative.is_absolute() or ".." in relative.parts:
        raise ContentError(
            where,
            (
                _("image '{src}' must be a file in the issue folder, next to the article").format(
                    src=src
                )
            ),
            line,
        )
    return folder / relative


def process_image(path: Path, src: str, where: Path, line: int | None) -> ProcessedImage:
    """Read, scale and re-encode the image file `path` (`src` as the article wrote it)."""
    try:
        stat = path.stat()
    except OSError:
        raise ContentError(
            where,
            _("image '{src}' not found; put the file next to the article ({folder})").format(
                src=src, folder=path.parent
            ),
            line,
        ) from None
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    if not path.is_file():
        raise ContentError(where, _("image '{src}' is not a file").format(src=src), line)
    if stat.st_size > MAX_SOURCE_BYTES:
        raise ContentError(
            where,
            _(
                "image '{src}' is {size} MB; save it smaller (at most {limit} MB) before adding it"
            ).format(
                src=src, size=f"{stat.st_size / 1e6:.0f}", limit=MAX_SOURCE_BYTES // 1_000_000
            ),
            line,
        )
    processed = _encode(path.read_bytes(), src, where, line)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = processed
    return processed


def _encode(raw: bytes, src: str, where: Path, line: int | None) -> ProcessedImage:
    from PIL import Image, ImageOps, UnidentifiedImageError

    unreadable = _(
        "image '{src}' cannot be read as an image; save it as JPEG or PNG and add it again"
    ).format(src=src)
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            if opened.width * opened.height > MAX_SOURCE_PIXELS:
                raise ContentError(
                    where,
                    _(
                        "image '{src}' is {width}x{height} pixels; "
                        "scale it below {limit} megapixels first"
                    ).format(
                        src=src,
                        width=opened.width,
                        height=opened.height,
                        limit=MAX_SOURCE_PIXELS // 1_000_000,
                    ),
                    line,
                )
            source_format = opened.format
            if source_format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 size when that is still wide enough: much faster.
                turned = opened.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                opened.draft("RGB", (1, MAX_FILE_WIDTH) if turned else (MAX_FILE_WIDTH, 1))
            opened.load()
            image = ImageOps.exif_transpose(opened)  # phone photos: turn upright
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ContentError(where, unreadable, line) from None
    if image.width > MAX_FILE_WIDTH:
        height = max(1, round(image.height * MAX_FILE_WIDTH / image.width))
        image = image.resize((MAX_FILE_WIDTH, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if source_format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        extension = "jpg"
    else:  # PNG, GIF, WebP, ...: PNG, which every mail client shows (first frame only)
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True)
        extension = "png"
    data = out.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ContentError(
            where,
            _(
                "image '{src}' is {size} MB even after scaling to {width} px wide "
                "(at most {limit} MB); save it as JPEG, or crop it"
            ).format(
                src=src,
                size=f"{len(data) / 1e6:.1f}",
                width=image.width,
                limit=f"{MAX_IMAGE_BYTES / 1e6:.0f}",
            ),
            line,
        )
    stem = _NAME_RE.sub("-", Path(urlsplit(src).path).stem.lower()).strip("-")[:40] or "foto"
    name = f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.{extension}"
    return ProcessedImage(name=name, data=data, width=image.width, height=image.height)
