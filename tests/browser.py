"""Shared Playwright set-up for the browser tests: Debian's Chromium, one per module."""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="no Chromium here"
)


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )


def wait_for_path(page, pattern):
    page.wait_for_url(lambda url: re.fullmatch(pattern, urlsplit(url).path) is not None)


def sign_in(page, base_url, username, password):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("[name=username]", username)
    page.fill("[name=password]", password)
    page.click("button[type=submit]")
    wait_for_path(page, "/")


# What sticks out of the page sideways: elements whose right edge passes the viewport,
# outside any box that scrolls on its own.
OVERFLOW_JS = """() => {
  const root = document.scrollingElement;
  if (root.scrollWidth <= root.clientWidth) return null;
  const width = root.clientWidth, culprits = [];
  const inScroller = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 1 && !inScroller(el)) {
      culprits.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
        ' right=' + Math.round(r.right));
      if (culprits.length >= 6) break;
    }
  }
  return {scrollWidth: root.scrollWidth, clientWidth: width, culprits};
}"""


def horizontal_overflow(page):
    """None when the page fits its viewport's width, else what sticks out."""
    return page.evaluate(OVERFLOW_JS)
