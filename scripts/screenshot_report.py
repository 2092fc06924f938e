#!/usr/bin/env python3
"""Screenshot an HTML page (``localrnn report --html``) in headless Chromium.

    python scripts/screenshot_report.py report.html report.png [--height N|auto] [--width 1280]

Runs ``chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot=PNG
--window-size=WIDTH,HEIGHT file://PAGE``. ``--height auto`` (the default) shoots a tall window
(``--max-height``, 16000 px) and cuts the plain rows below the page's last line (with Pillow, which
matplotlib brings), so the PNG shows the whole page; a number shoots exactly that window. The
browser is ``$CHROMIUM`` or the first of chromium, chromium-browser, google-chrome on PATH
(Debian: ``apt-get install chromium``). Exit 2: bad arguments; 1: no browser or it failed.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MARGIN = 48  # plain pixels kept under the last line


def find_browser() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def shoot(browser: str, page: str, png: str, width: int, height: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="localrnn-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--no-first-run", "--default-background-color=ffffffff",
               f"--screenshot={os.path.abspath(png)}", f"--window-size={width},{height}",
               pathlib.Path(page).resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not os.path.isfile(png):
        sys.exit(f"{os.path.basename(browser)} failed (exit {r.returncode}): {r.stderr.strip()[-1000:]}")


def crop_to_content(png: str) -> tuple[int, int] | None:
    """Cut the rows below the last non-plain row (keeping ``MARGIN``); None without Pillow."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return None
    with Image.open(png) as im:
        rgb = im.convert("RGB")
    plain = Image.new("RGB", rgb.size, rgb.getpixel((rgb.width - 1, rgb.height - 1)))
    box = ImageChops.difference(rgb, plain).getbbox()
    bottom = min(rgb.height, (box[3] if box else 1) + MARGIN)
    rgb.crop((0, 0, rgb.width, bottom)).save(png)
    return rgb.width, bottom


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page", help="the HTML page")
    ap.add_argument("png", help="the screenshot to write (.png)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", default="auto", help="window height in pixels, or auto (the whole page)")
    ap.add_argument("--max-height", type=int, default=16000, help="auto: the tallest page shot")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds the browser may take")
    a = ap.parse_args(argv)
    if not os.path.isfile(a.page):
        ap.error(f"page: no file {a.page}")
    if not a.png.endswith(".png") or not os.path.isdir(os.path.dirname(os.path.abspath(a.png))):
        ap.error(f"png: {a.png} must be a .png file in an existing folder")
    if a.height != "auto" and not (a.height.isdigit() and int(a.height) > 0):
        ap.error(f"--height: {a.height!r}; allowed: a positive number of pixels, or auto")
    browser = find_browser()
    if browser is None:
        print(f"no headless browser: none of {', '.join(BROWSERS)} on PATH (Debian: apt-get install chromium)",
              file=sys.stderr)
        return 1
    height = a.max_height if a.height == "auto" else int(a.height)
    shoot(browser, a.page, a.png, a.width, height, a.timeout)
    size = crop_to_content(a.png) if a.height == "auto" else (a.width, height)
    if a.height == "auto" and size and size[1] >= height:
        print(f"note: the page is taller than --max-height {height}; the screenshot is cut there", file=sys.stderr)
    print(f"wrote {a.png}" + (f" ({size[0]}x{size[1]})" if size else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
