"""The web page in a real headless browser (Debian's chromium through selenium and chromedriver): open an
image, paint strokes, undo one, run, check the result's pixels, download it; load a mask file and run again;
provoke a server error and read the message; save a screenshot. A missing browser fails this test
(./setup.sh installs it)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from tests.serve.conftest import wait_for
from tests.serve.helpers import as_png, sample

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT_ENV = "TRT_INPAINT_SCREENSHOT_DIR"  # also keep the screenshot there (to look at it)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the page test needs Debian's chromium and chromium-driver: run ./setup.sh (apt-get install -y "
        "chromium chromium-driver)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,900",
    ):  # fmt: skip
        opts.add_argument(arg)
    downloads = tmp_path_factory.mktemp("downloads")
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    allow = {"behavior": "allow", "downloadPath": str(downloads)}
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", allow)
    driver.downloads = downloads  # where a click on Download saves the file
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _decode_data_url(url: str) -> np.ndarray:
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def _result_bytes(driver) -> bytes:
    b64 = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(document.getElementById('result').src).then(r => r.arrayBuffer()).then(buf => {
          let s = ''; const a = new Uint8Array(buf);
          for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode(...a.subarray(i, i + 8192));
          done(btoa(s));
        }).catch(e => done('ERROR ' + e));"""
    )
    assert not b64.startswith("ERROR"), b64
    return base64.b64decode(b64)


def _file_input(driver, element_id: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].style.display = 'block';", field)
    field.send_keys(str(path))
    driver.execute_script("arguments[0].style.display = '';", field)


def _run_and_wait(driver, before: str | None) -> str:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "run").click()

    def finished():
        msg = driver.find_element(By.ID, "message")
        src = driver.find_element(By.ID, "result").get_attribute("src")
        cls = msg.get_attribute("class")
        return (cls == "error" and "error") or (cls == "ok" and src and src != before and "ok")

    return wait_for(finished, 30, "the page's run to finish")


def test_page_paints_runs_compares_and_reports_errors(start_server, serve_engines, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    server = start_server(["--engines", serve_engines, "--backend", "ort-cpu"])
    d = browser
    d.get(server.url + "/")
    wait_for(lambda: "ready" in d.find_element(By.ID, "server-state").text, 10, "the state bar")
    assert "resident" in d.find_element(By.ID, "server-state").text

    img_path = as_png(sample(0)[0], tmp_path)  # PNG: lossless, so untouched pixels compare exactly
    _file_input(d, "image-file", img_path)
    canvas = d.find_element(By.ID, "mask-canvas")
    wait_for(lambda: canvas.is_displayed() and canvas.size["width"] == 512, 10, "the image on the canvas")

    def stroke(x0, y0, x1, y1):  # offsets from the canvas' centre, in CSS pixels (here 1:1 with the image)
        ActionChains(d).move_to_element_with_offset(canvas, x0, y0).click_and_hold().move_by_offset(
            (x1 - x0) // 2, (y1 - y0) // 2
        ).move_by_offset((x1 - x0) - (x1 - x0) // 2, (y1 - y0) - (y1 - y0) // 2).release().perform()

    stroke(-150, -150, -40, -150)
    d.find_element(By.TAG_NAME, "body").send_keys("]")  # a bigger brush for the next stroke
    stroke(40, 100, 160, 120)
    stroke(0, 0, 0, 90)
    d.find_element(By.ID, "undo").click()  # the third stroke goes

    mask = _decode_data_url(d.execute_script("return document.getElementById('mask-canvas').toDataURL()"))
    hole = mask[..., 3] > 127
    assert hole[256 - 150, 256 - 100] and hole[256 + 110, 256 + 100], "strokes missing from the mask"
    assert not hole[256 + 45, 256], "the undone stroke is still in the mask"
    assert 2000 < hole.sum() < 20000

    _run_and_wait(d, None)
    result = cv2.imdecode(np.frombuffer(_result_bytes(d), np.uint8), cv2.IMREAD_UNCHANGED)
    source = cv2.imread(str(img_path), cv2.IMREAD_UNCHANGED)
    assert result.shape == source.shape
    assert np.array_equal(result[~hole], source[~hole]), "pixels outside the strokes changed"
    changed = np.any(result[hole] != source[hole], axis=-1).mean()
    assert changed > 0.95, f"only {changed:.1%} of the painted pixels changed"
    info = d.find_element(By.ID, "result-info").text
    assert "seed 240" in info and "batch of 1" in info

    # Download, as a person clicks it: the saved file is the result, named after the input
    link = d.find_element(By.ID, "download")
    d.execute_script("arguments[0].scrollIntoView();", link)
    link.click()
    saved = wait_for(
        lambda: [p for p in d.downloads.iterdir() if not p.name.endswith(".crdownload")], 15, "the download"
    )
    assert [p.name for p in saved] == [f"{img_path.stem}_inpainted{img_path.suffix}"], saved
    assert saved[0].read_bytes() == _result_bytes(d)

    # compare: the slider halfway, then a screenshot of the page as a person sees it
    d.execute_script(
        "const s = document.getElementById('compare'); s.value = 50; s.dispatchEvent(new Event('input'));"
    )
    shot = tmp_path / "page.png"
    d.save_screenshot(str(shot))
    assert cv2.imread(str(shot)).shape[1] >= 1200
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copy(shot, Path(os.environ[SCREENSHOT_ENV]) / "serve-page.png")

    # a mask file instead of strokes: the same answer as the API gives for the same two files
    first = d.find_element(By.ID, "result").get_attribute("src")
    _file_input(d, "mask-file", sample(0)[1])
    assert _run_and_wait(d, first) == "ok"
    files = {"image": ("i", img_path.read_bytes()), "mask": ("m", sample(0)[1].read_bytes())}
    direct = httpx.post(server.url + "/api/v1/inpaint", files=files, timeout=30).content
    assert _result_bytes(d) == direct

    # a server error in words: a mask of another size
    _file_input(d, "mask-file", sample(2)[1])
    assert _run_and_wait(d, None) == "error"
    text = d.find_element(By.ID, "message").text
    assert text.startswith("The server could not use this input (400)") and "451x300" in text, text
