"""The dashboard in a real headless browser (Debian's chromium + chromedriver through Selenium), offline.

Skipped, with the reason, where no browser is installed; CI installs one (.ci/run) and fails without it. Set
DASHBOARD_SCREENSHOTS=dir to keep a screenshot of every page.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.console.adapter import ConsoleAdapter, ConsoleIdentity
from adapters.web.site import add_dashboard
from bot.app import open_engine
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.responder import RecordingResponder
from tests.harness.clock import Clock
from tests.harness.dashboard import START, free_port
from tests.harness.dashboard_pages import saved_library
from tests.harness.messages import message

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "no chromium/chromedriver: apt-get install -y chromium chromium-driver (CI installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture
def browser() -> None:
    """Skip without a browser; under CI (which installs one in .ci/run) that is a failure."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)


def browse(link: str, shots: Path) -> dict[str, Any]:
    """Sign in with the link and visit every page as a person would; what was seen. Blocking."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    shots.mkdir(parents=True, exist_ok=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def follow(element: Any) -> None:
        """Click what loads a new page, and wait for it (a busy machine may not have it yet)."""
        old = driver.find_element(By.TAG_NAME, "html")
        element.click()
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: _stale(old))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def back() -> None:
        old = driver.find_element(By.TAG_NAME, "html")
        driver.back()
        WebDriverWait(driver, 30).until(lambda d: _stale(old))

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
        # Every host but this machine is unreachable: the pages must need nothing from outside.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    seen: dict[str, Any] = {}
    try:
        driver.get(link)
        seen["confirm"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "0-sign-in.png"))
        follow(driver.find_element(By.CSS_SELECTOR, "main form button"))
        seen["after_login"] = driver.current_url
        seen["spend"] = driver.find_element(By.TAG_NAME, "main").text
        seen["chart_bars"] = len(driver.find_elements(By.CSS_SELECTOR, "svg.chart rect"))
        driver.save_screenshot(str(shots / "1-spend.png"))
        follow(driver.find_element(By.LINK_TEXT, "Budgets"))
        Select(driver.find_element(By.NAME, "scope")).select_by_value("team")
        Select(driver.find_element(By.NAME, "metric")).select_by_value("monthly")
        driver.find_element(By.NAME, "amount").send_keys("30")
        follow(driver.find_element(By.CSS_SELECTOR, "form.limit-form button"))
        seen["budgets"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "2-budgets.png"))
        follow(driver.find_element(By.LINK_TEXT, "Prompts"))
        driver.save_screenshot(str(shots / "3-prompts.png"))
        follow(driver.find_element(By.LINK_TEXT, "summary"))
        seen["prompt"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "4-prompt.png"))
        follow(driver.find_element(By.CSS_SELECTOR, "form.limit-form button"))  # the diff form
        seen["diff"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "5-diff.png"))
        back()
        follow(driver.find_element(By.PARTIAL_LINK_TEXT, "runs #"))
        seen["compare_columns"] = len(driver.find_elements(By.CSS_SELECTOR, "table.side thead th"))
        seen["compare"] = driver.find_element(By.TAG_NAME, "main").text
        driver.save_screenshot(str(shots / "6-compare.png"))
        follow(driver.find_element(By.CSS_SELECTOR, "header button"))  # sign out
        seen["signed_out"] = driver.find_element(By.TAG_NAME, "main").text
        seen["console"] = [
            entry
            for entry in driver.get_log("browser")  # type: ignore[no-untyped-call]
            if entry.get("level") == "SEVERE"
        ]
        driver.get(link)  # answered 403, on purpose
        seen["link_again"] = driver.find_element(By.TAG_NAME, "main").text
    finally:
        driver.quit()
    return seen


async def test_an_admin_signs_in_from_the_chat_and_uses_every_page_in_a_browser(
    browser: None, make_settings: Any, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    clock = Clock(START)
    settings = make_settings(port=port, public_url=f"http://127.0.0.1:{port}")
    async with open_engine(settings, clock=clock) as engine:
        # The console is boss's platform, and makes boss an admin (the dashboard asks it on each request).
        ConsoleAdapter(engine, ConsoleIdentity("boss", is_admin=True), stdin=io.StringIO(), stdout=io.StringIO())
        fake_openai.enqueue(Reply("spent", prompt_tokens=200_000, completion_tokens=20_000))
        await engine.handle(message("hello", user="ann"), RecordingResponder())
        clock.advance(days=-3)
        fake_openai.enqueue(Reply("earlier", prompt_tokens=100_000, completion_tokens=50_000))
        await engine.handle(message("hi", user="bob"), RecordingResponder())
        clock.advance(days=3)
        await saved_library(engine, fake_openai, clock)
        responder = RecordingResponder()
        await engine.handle(message("/dashboard", user="boss", admin=True), responder)
        link = next(w for w in responder.texts[0][0].split() if "token=" in w)
        runner = web.AppRunner(add_dashboard(web.Application(), engine))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        shots = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
        try:
            seen = await asyncio.to_thread(browse, link, shots)
        finally:
            await runner.cleanup()
        limits = await engine.store.ledger.limit_overrides("local")
    assert "Sign in as boss, an admin of console team local." in seen["confirm"]
    assert seen["after_login"] == f"http://127.0.0.1:{port}/dashboard"  # the token left the address bar
    assert "By user" in seen["spend"] and "ann" in seen["spend"] and "bob" in seen["spend"]
    assert seen["chart_bars"] >= 2
    assert "The team: monthly budget default → $30.00." in seen["budgets"]
    assert [(o.subject, o.metric, o.value) for o in limits] == [("", "monthly_usd", 30_000_000_000)]
    assert "Summarize {text} in a {tone} tone." in seen["prompt"] and "clear & short" in seen["prompt"]
    assert "+system: You are terse." in seen["diff"]
    assert seen["compare_columns"] == 2 and "inputs: text=notes, tone=dry" in seen["compare"]
    assert "You are not signed in" in seen["signed_out"]
    assert "expired or was already used" in seen["link_again"]
    assert seen["console"] == []  # no blocked resource, no CSP violation, nothing from another host


def _stale(element: Any) -> bool:
    """Whether the page `element` belonged to has been replaced."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False
