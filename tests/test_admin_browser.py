"""The admin in a real browser: Debian's chromium and chromium-driver, headless, via selenium.

One test walks what an operator does: log in, see the three services, stop one (its port then
refuses connections) and start it again, watch a new log line arrive without reloading, apply
a configuration change and roll it back.  A screenshot of the dashboard is saved as an
artifact (``$DROPINS_ADMIN_SCREENSHOT`` if set, else in the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from _admin_helpers import request, running_shop
from _runner_helpers import assert_no_traceback
from conftest import get_free_port

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_an_operator_manages_the_shop_from_a_browser(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1100,1400",
                     f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    with running_shop(tmp_path / "shop") as shop:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            wait = WebDriverWait(driver, 15)

            # The table is redrawn every few seconds: read and click it in one script each,
            # so that no element found can go stale before it is used.
            def state_of(name: str) -> str:
                return str(driver.execute_script(
                    "const cell = document.querySelector("
                    "`tr[data-service='${arguments[0]}'] .state`);"
                    "return cell ? cell.textContent : '';", name))

            def click(name: str, action: str) -> None:
                driver.execute_script(
                    "document.querySelector(`tr[data-service='${arguments[0]}'] "
                    "button[data-action='${arguments[1]}']`).click();", name, action)

            driver.get(shop.url)
            wait.until(lambda d: d.find_element(By.ID, "login-user").is_displayed())
            driver.find_element(By.ID, "login-user").send_keys("alice")
            driver.find_element(By.ID, "login-password").send_keys("alice-secret")
            driver.find_element(By.ID, "login-submit").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-service]")) == 3)
            names = driver.execute_script(
                "return [...document.querySelectorAll('tr[data-service]')]"
                ".map((row) => row.dataset.service);")
            assert names == ["echo", "site", "jobs"]
            assert {state_of(name) for name in names} == {"running"}

            click("echo", "stop")
            wait.until(lambda d: state_of("echo") == "stopped")
            assert _refuses(shop.echo)
            click("echo", "start")
            wait.until(lambda d: state_of("echo") == "running")
            socket.create_connection(("127.0.0.1", shop.echo), timeout=5).close()

            # a line logged by someone else arrives in the open page
            request(shop.admin, "POST", "/api/services/jobs/restart")
            wait.until(lambda d: "asked to restart service 'jobs'" in
                       d.find_element(By.ID, "log-lines").text)
            driver.get_screenshot_as_file(str(tmp_path / "admin.png"))
            artifact = os.environ.get("DROPINS_ADMIN_SCREENSHOT")
            if artifact:
                shutil.copyfile(tmp_path / "admin.png", artifact)

            path = shop.folder / "shop.toml"
            before = path.read_text()
            moved = get_free_port()
            changed = before.replace(f"tcp:{shop.echo}:", f"tcp:{moved}:")
            driver.execute_script("document.getElementById('config-text').value = "
                                  "arguments[0];", changed)
            driver.find_element(By.ID, "config-check").click()
            wait.until(lambda d: d.find_element(By.ID, "config-result").text
                       == "ok: restarted echo; unchanged site, jobs")
            assert f"+listen = \"tcp:{moved}" in driver.find_element(By.ID, "config-diff").text
            driver.find_element(By.ID, "config-apply").click()
            wait.until(lambda d: d.find_element(By.ID, "config-result").text.startswith(
                "applied:"))
            assert path.read_text() == changed
            socket.create_connection(("127.0.0.1", moved), timeout=5).close()
            driver.find_element(By.ID, "config-rollback").click()
            wait.until(lambda d: d.find_element(By.ID, "config-text").get_attribute("value")
                       == before)
            assert path.read_text() == before
            socket.create_connection(("127.0.0.1", shop.echo), timeout=5).close()
            errors = [entry for entry in driver.get_log("browser")
                      if entry.get("level") == "SEVERE" and entry.get("source") != "network"]
            assert not errors, errors
        finally:
            driver.quit()
        assert_no_traceback(shop.process.stderr)
