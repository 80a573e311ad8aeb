"""The brand of a newsletter home: brand.yaml of its house style, read into a Brand.

Content loading reads files into the model (issue.py: the issue and its agenda; this module: the
brand); render.py turns the model into the e-mail.
"""

from __future__ import annotations

import re
from pathlib import Path

from nieuwsbrief.addresses import invalid_reason
from nieuwsbrief.content.issue import read_text
from nieuwsbrief.errors import ContentError
from nieuwsbrief.i18n import _
from nieuwsbrief.model import GREETING_FIELD_RE, Brand
from nieuwsbrief.templating import BRAND_FILE, template_path
from nieuwsbrief.yamlfile import Node, parse_yaml


def load_brand(templates_dir: Path | None) -> Brand:
    """Load brand.yaml: the home's templates folder's, else the default that ships."""
    path = template_path(templates_dir, BRAND_FILE)
    root = parse_yaml(read_text(path), path)
    if not isinstance(root.value, dict):
        raise ContentError(path, _("must be 'key: value' lines (name, website, ...)"), root.line)
    fields = root.value

    def text(key: str, node_map: dict[str, Node] = fields) -> str:
        node = node_map.get(key)
        if node is None or not isinstance(node.value, str) or not node.value.strip():
            raise ContentError(
                path, _("'{key}' is missing or empty").format(key=key), node.line if node else 1
            )
        return " ".join(node.value.split())

    def section(key: str) -> dict[str, Node]:
        node = fields.get(key)
        if node is None or not isinstance(node.value, dict):
            raise ContentError(
                path, _("'{key}' must be a mapping").format(key=key), node.line if node else 1
            )
        return node.value

    logo, colors, sample = section("logo"), section("colors"), section("sample_subscriber")
    color_values: dict[str, str] = {}
    for key in (
        "primary", "accent", "text", "muted", "background", "surface",
        "dark_background", "dark_surface", "dark_text", "dark_primary",
    ):  # fmt: skip
        value = text(key, colors)
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ContentError(
                path, _("colour '{key}' must look like #1f4e79").format(key=key), colors[key].line
            )
        color_values[key] = value
    greeting = text("greeting")
    without_fallback = [m for m in GREETING_FIELD_RE.finditer(greeting) if m.group(2) is None]
    if without_fallback and "greeting_anonymous" not in fields:
        raise ContentError(
            path,
            (
                _(
                    "'greeting' uses {value} without a fallback, so it needs "
                    "'greeting_anonymous' (e.g. \"Beste lezer,\") for rows without "
                    "that column; add it, or write the fallback in the "
                    "placeholder: {{voornaam|lezer}}"
                ).format(value=without_fallback[0][0])
            ),
            fields["greeting"].line,
        )
    if "{" in GREETING_FIELD_RE.sub("", greeting) or "}" in GREETING_FIELD_RE.sub("", greeting):
        raise ContentError(
            path,
            (
                _(
                    "'greeting' has a brace that is not a placeholder; write "
                    '{column} or {column|fallback}, e.g. "Beste '
                    '{voornaam|lezer},"'
                )
            ),
            fields["greeting"].line,
        )
    width_text = text("width", logo)
    if not width_text.isdigit():
        raise ContentError(path, _("logo width must be a number of pixels"), logo["width"].line)
    for key in ("website",):
        if not text(key).startswith("https://"):
            raise ContentError(
                path, _("'{key}' must start with https://").format(key=key), fields[key].line
            )
    if not text("url", logo).startswith("https://"):
        raise ContentError(path, _("the logo url must start with https://"), logo["url"].line)
    _check_address(path, text("email"), fields["email"].line)
    return Brand(
        name=text("name"),
        tagline=text("tagline"),
        website=text("website"),
        email=text("email"),
        address=text("address"),
        footer=text("footer"),
        greeting=greeting,
        greeting_anonymous=text("greeting_anonymous") if "greeting_anonymous" in fields else "",
        logo_url=text("url", logo),
        logo_alt=text("alt", logo),
        logo_width=int(width_text),
        colors=color_values,
        sample_name=text("name", sample),
        sample_email=text("email", sample),
        sources={
            text("url", logo): f"{path}:{logo['url'].line}",
            text("website"): f"{path}:{fields['website'].line}",
            f"mailto:{text('email')}": f"{path}:{fields['email'].line}",
        },
        greeting_source=f"{path}:{fields['greeting'].line}",
    )


def _check_address(path: Path, address: str, line: int) -> None:
    """The brand's address is the From: of every message and the organiser of every event."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        reason = _("not a valid e-mail address: {reason}").format(reason=invalid_reason(exc))
        raise ContentError(path, reason, line) from None
