"""Helpers for browser tests of the screens (/ui/): signing in, and screenshots.

``sign_in(page, key, purpose="triage", start="/ui/")`` opens ``start``, signs in with the
API key on the sign-in page it is sent to and, when the purpose page follows, chooses
``purpose`` (``None`` stops on the purpose page). It returns once the browser has left
both pages.

``screenshot(page, name, *, backend, tmp_path)`` saves a full-page PNG of the page as it
is now, at 1280 x 900, under ``tmp_path`` always, and into ``docs/screenshots/<name>.png``
(the README's pictures) only when ``TRIAGE_UPDATE_SCREENSHOTS=1`` is set and the backend
is SQLite, so that ordinary runs and CI never change the tree. A page whose PNG would be
larger than 300 KB is cut to its top.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import FloatRect, Page, ViewportSize, expect

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
MAX_BYTES = 300_000
CLIP_HEIGHT = 1800


def sign_in(page: Page, key: str, purpose: str | None = "triage", start: str = "/ui/") -> None:
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/ui/sign-in"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/ui/sign-in" not in url)
    if "/ui/purpose" not in page.url or purpose is None:
        return
    page.locator(f"#purpose-{purpose}").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: "/ui/purpose" not in url)


def _update_wanted(backend: str) -> bool:
    return os.environ.get("TRIAGE_UPDATE_SCREENSHOTS", "") == "1" and backend == "sqlite"


def screenshot(page: Page, name: str, *, backend: str, tmp_path: Path) -> Path:
    """Save the page as ``<name>.png``; return the path under ``tmp_path``."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise ValueError(f"screenshot names are lower-case words and hyphens: {name!r}")
    page.set_viewport_size(VIEWPORT)
    image = page.screenshot(full_page=True, animations="disabled", caret="hide")
    if len(image) > MAX_BYTES:
        clip: FloatRect = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": CLIP_HEIGHT}
        image = page.screenshot(full_page=True, clip=clip, animations="disabled", caret="hide")
    if len(image) > MAX_BYTES:
        image = page.screenshot(animations="disabled", caret="hide")  # the viewport only
    saved = tmp_path / f"{name}.png"
    saved.write_bytes(image)
    if _update_wanted(backend):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(image)
    return saved
