"""HTML forms as a browser sees them: action, method and the fields it would submit."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

__all__ = ["Form", "find_form", "parse_forms"]


@dataclass(slots=True)
class Form:
    action: str  # absolute URL
    method: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> value, in page order
    types: dict[str, str] = field(default_factory=dict)  # name -> input type

    @property
    def has_password(self) -> bool:
        return "password" in self.types.values()

    def hidden(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if self.types.get(k) == "hidden"}


class _Parser(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            action = urljoin(self.base, values.get("action") or self.base)
            self._open = Form(action, (values.get("method") or "GET").upper())
            self.forms.append(self._open)
        elif tag in ("input", "textarea", "select", "button") and self._open is not None:
            name = values.get("name")
            kind = (values.get("type") or ("text" if tag != "button" else "submit")).lower()
            if not name or kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in values:
                return
            self._open.fields.setdefault(name, values.get("value", ""))
            self._open.types.setdefault(name, kind)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def parse_forms(html: str, base: str) -> list[Form]:
    parser = _Parser(base)
    parser.feed(html)
    parser.close()
    return parser.forms


def find_form(
    forms: list[Form], target: str | None = None, *, password: bool = False
) -> Form | None:
    """The form posting to ``target`` (a URL; compared by path), else the first with a
    password field when ``password``, else the first form."""
    if target is not None:
        path = urlsplit(target).path
        for form in forms:
            if urlsplit(form.action).path == path:
                return form
    if password:
        return next((f for f in forms if f.has_password), None)
    return forms[0] if forms else None
