"""Reading a rendered form from a page, as a browser would submit it (test helper)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class FormFound:
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.found: FormFound | None = None
        self.inside = False
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.found = FormFound(action=a.get("action", ""))
            self.inside = True
        elif self.inside and self.found is not None:
            if tag == "input" and a.get("name"):
                kind = a.get("type", "text")
                if kind not in ("checkbox", "radio") or "checked" in a:
                    self.found.fields[a["name"]] = a.get("value", "")
            elif tag == "textarea" and a.get("name"):
                self.textarea = a["name"]
                self.found.fields[a["name"]] = ""

    def handle_data(self, data: str) -> None:
        if self.textarea and self.found is not None:
            self.found.fields[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.inside = False


def form_of(html: str, form_id: str) -> FormFound:
    """The form with this id: its action and the fields it would submit (no buttons)."""
    parser = _Forms(form_id)
    parser.feed(html)
    assert parser.found is not None, f"no form #{form_id} on the page"
    return parser.found
