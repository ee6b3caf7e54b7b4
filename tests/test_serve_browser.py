"""alexnet serve's page in a real headless browser: Debian's chromium driven by Playwright.

Upload a generated image, see the top-5 and the activation maps rendered, save a screenshot (the README's picture:
ALEXNET_SERVE_SCREENSHOT=docs/serve/page.png makes it there).  No chromium is a failure, not a skip: the project's
setup (.ci/run) installs it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("ALEXNET_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail("no chromium for the browser test: apt-get install -y --no-install-recommends chromium "
                    "(or set ALEXNET_CHROMIUM to a Chromium binary)", pytrace=False)
    return path


def test_image(path: Path) -> Path:
    """A picture with edges, colours and a blob: something for conv1's edge and colour kernels to answer."""
    y, x = np.mgrid[0:240, 0:320].astype(np.float32)
    r = 127 + 127 * np.sin(x / 9.0)
    g = 127 + 127 * np.cos((x + y) / 15.0)
    b = np.where((x - 200) ** 2 + (y - 110) ** 2 < 60 ** 2, 230, 40 + y / 3)
    Image.fromarray(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8)).save(path)
    return path


test_image.__test__ = False   # a helper, not a test


def test_the_page_shows_top5_and_activation_maps(tmp_path):
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs playwright: pip install -e '.[dev]'", pytrace=False)
    from alexnet.serve import load_served
    from alexnet.serve.app import create_app
    from alexnet.serve.bench import background_server
    from test_serve_common import CLASSES, tiny_checkpoint

    served, _ = load_served(str(tiny_checkpoint(tmp_path / "tiny.pt")))
    shot = Path(os.environ.get("ALEXNET_SERVE_SCREENSHOT") or tmp_path / "serve-page.png")
    with background_server(create_app(served)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.wait_for_selector("body[data-model=ready]", timeout=30_000)
            assert "paper" in page.inner_text("#model-chip")
            page.set_input_files("#file", str(test_image(tmp_path / "stripes.png")))
            page.wait_for_selector("body[data-state=done]", timeout=60_000)
            centre = page.locator("#pred-centre .bar")
            assert centre.count() == 5 and page.locator("#pred-ten .bar").count() == 5
            assert page.inner_text("#pred-centre .bar .label >> nth=0") in CLASSES
            assert page.locator("#crops img").count() == 10
            maps = page.locator("#layers .tower img")
            assert maps.count() == 10   # conv1..conv5, two towers each
            page.wait_for_function("[...document.querySelectorAll('#layers img, #filters')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
            assert page.locator("#fc .layer").count() == 3
            assert page.inner_text("#error") == "" and not errors
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
