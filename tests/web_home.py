"""A newsletter home for the web-edition tests: the example issue with a photo, a second issue,
and an agenda whose May masterclass has a time, venue and address."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

WEB_URL = "https://www.bureau-kennis.net/nieuwsbrief/"
PHOTO = "kantoor.jpg"
PHOTO_SIZE = (2400, 1200)  # scaled to 1104 x 552 in the site, shown at 552 x 276
TIMED_EVENT = "masterclass-social-media-2012-05"


def photo_bytes(size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """Return a JPEG photo (a gradient, so it compresses like a photo, not like a flat colour)."""
    from PIL import Image

    width, height = size
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.putpixel((width // 2, height // 2), (200, 40, 40))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def add_photo(issue_dir: Path, name: str = PHOTO, data: bytes | None = None) -> Path:
    """Put a photo next to the first article and use it there; return the article."""
    (issue_dir / name).write_bytes(photo_bytes() if data is None else data)
    article = issue_dir / "01-social-media.md"
    article.write_text(
        article.read_text("utf-8") + f"\n\n![Het kantoor van Bureau | Kennis]({name})\n", "utf-8"
    )
    return article


def photo_line(article: Path, name: str = PHOTO) -> int:
    """Return the line of the article that uses the photo."""
    lines = article.read_text("utf-8").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if f"]({name})" in text)


def make_home(example_copy: Path) -> Path:
    """Turn the copy of the example into a home with two issues, a photo and a timed event."""
    issues = example_copy.parent
    agenda = issues / "agenda.yaml"
    text = agenda.read_text("utf-8")
    anchor = f"- id: {TIMED_EVENT}\n"
    assert anchor in text
    text = text.replace(
        anchor,
        anchor
        + '  time: "13:30-17:00"\n  venue: Hotel Amersfoort\n'
        + "  address: Stationsplein 1, 3818 LE Amersfoort\n",
    )
    agenda.write_text(text, "utf-8")
    add_photo(example_copy)
    june = issues / "2012-06"
    shutil.copytree(example_copy, june, ignore=shutil.ignore_patterns("out", "*.jpg"))
    issue_yaml = june / "issue.yaml"
    issue_yaml.write_text(
        issue_yaml.read_text("utf-8")
        .replace("2012-05-01", "2012-06-01")
        .replace("mei 2012", "juni 2012"),
        "utf-8",
    )
    article = june / "01-social-media.md"
    lines = article.read_text("utf-8").splitlines()
    article.write_text("\n".join(x for x in lines if f"]({PHOTO})" not in x) + "\n", "utf-8")
    return issues.parent
