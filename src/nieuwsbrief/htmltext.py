"""The text of an HTML e-mail a reader sees, in order: one parser for `check` and `preview`.

`check` looks for the preheader (and link texts) in it; the preview's inbox line shows its
first words. Nothing inside head, style, script or title is visible.
"""

from __future__ import annotations

from html.parser import HTMLParser

_HIDDEN_TAGS = frozenset(("head", "style", "script", "title"))


class VisibleTextParser(HTMLParser):
    """Collect the text of an HTML document a reader sees, in order, into `visible`.

    A subclass that looks at more (check.py: images, links) calls these handlers via super().
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self._hidden = 0  # depth inside head, style, script, title

    @property
    def hidden(self) -> bool:
        """Return whether the parser is inside an element whose text nobody sees."""
        return self._hidden > 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.visible.append(data)


def visible_text(html: str) -> list[str]:
    """Return the pieces of text of `html` a reader sees, in document order."""
    parser = VisibleTextParser()
    parser.feed(html)
    parser.close()
    return parser.visible
