"""The demo in a real browser: headless Chromium, driven through selenium, opens the demo's home
page as ``scripts/demo.sh`` serves it (same script, same app, same flags, on a free port), follows
every link on the demo's own pages, and checks that none ends on an error page, that every page's
images and stylesheets load, and that the stylesheets really apply.

Uses Debian's ``chromium`` and ``chromium-driver``. Skipped where either is missing, unless
``TERN_REQUIRE_BROWSER=1`` (``scripts/test.sh`` installs both and sets it): then that is a failure.
"""

import os
import shutil
import sys
import urllib.parse

import pytest

from conftest import Server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_SERVER = os.path.join(REPO, "scripts", "demo_server.sh")

# Works as root in a container: no sandbox (it needs user namespaces), no GPU, and nothing that
# reaches for the network on its own (no QUIC probing, background updates, sync or first-run pages).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)
PAGE_LOAD_TIMEOUT = 30  # seconds for one page (the demo's slowest link answers in 3)
MAX_PAGES = 40  # the demo has about a dozen; a link loop must not keep the test going

# Links that lead to an error on purpose, with the status they must get.
DELIBERATE_ERRORS = {"/no-such-page": 404}

NAVIGATION_STATUS = "return performance.getEntriesByType('navigation')[0].responseStatus"
BROKEN_IMAGES = "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
# A stylesheet that failed to load, or came with a type the browser refuses, has no rules.
EMPTY_STYLESHEETS = "return [...document.styleSheets].filter(s => s.cssRules.length === 0).map(s => s.href)"
LINKS = "return [...document.querySelectorAll('a[href]')].map(a => a.href)"


def find_browser():
    """(chromium, chromedriver) paths; a skip, or a failure under TERN_REQUIRE_BROWSER=1, without them."""
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    if os.environ.get("TERN_REQUIRE_BROWSER") == "1":
        pytest.fail(message + "; TERN_REQUIRE_BROWSER=1 makes their absence a failure")
    pytest.skip(message)


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = find_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def demo():
    """The demo as scripts/demo.sh serves it, with the tern installed beside this Python."""
    tern = os.path.join(os.path.dirname(sys.executable), "tern")
    server = Server(["bash", DEMO_SERVER, "--port", "0"], env={**os.environ, "TERN": tern})
    try:
        yield server
    finally:
        server.stop()


def visit(browser, url):
    """Loads ``url``; returns the final path and the HTTP status of the page shown."""
    browser.get(url)
    shown = urllib.parse.urlsplit(browser.current_url)
    # Chromium's own error page (connection refused, ...) is at chrome-error://, with no status.
    assert shown.scheme == "http", f"{url} ended at {browser.current_url}"
    return shown.path, browser.execute_script(NAVIGATION_STATUS)


def check_page(browser, url):
    """What every page of the demo must satisfy once loaded: UTF-8, and all images and stylesheets in."""
    assert browser.execute_script("return document.characterSet") == "UTF-8", url
    assert browser.execute_script(BROKEN_IMAGES) == [], url
    assert browser.execute_script(EMPTY_STYLESHEETS) == [], url


def style(browser, selector, property_name):
    return browser.execute_script(
        "return getComputedStyle(document.querySelector(arguments[0])).getPropertyValue(arguments[1])",
        selector,
        property_name,
    )


def test_every_link_of_the_demo_leads_to_a_working_page(browser, demo):
    host, port = demo.address
    origin = f"http://{host}:{port}"
    path, status = visit(browser, origin + "/")
    assert (path, status) == ("/", 200)
    check_page(browser, "/")
    # static/style.css applies: without it the body has the browser's 8px margin and no background.
    assert browser.title == "Hello from tern · tern demo"
    assert style(browser, "body", "margin-top") == "0px"
    assert style(browser, "body", "background-color") == "rgb(247, 249, 251)"
    assert style(browser, "header a", "text-decoration-line") == "none"

    to_visit = [origin + "/"]
    seen = set(to_visit)
    visited = {}
    while to_visit:
        assert len(visited) < MAX_PAGES, f"more than {MAX_PAGES} pages: {sorted(visited)}"
        url = to_visit.pop(0)
        path, status = visit(browser, url)
        requested = urllib.parse.urlsplit(url).path
        visited[url] = status
        expected = DELIBERATE_ERRORS.get(requested)
        if expected is not None:
            assert status == expected, f"{url}: {status}, wanted {expected}"
            # The app's own error page, in the demo's layout, not a bare one.
            assert browser.find_element("css selector", "h1").text == f"{expected} Not Found"
            assert style(browser, "body", "background-color") == "rgb(247, 249, 251)"
        else:
            assert 200 <= status < 400, f"{url} (linked from the demo) answered {status}"
        if browser.execute_script("return document.contentType") != "text/html":
            continue
        check_page(browser, url)
        for link in browser.execute_script(LINKS):
            link = urllib.parse.urldefrag(link).url
            if link.startswith(origin + "/") and link not in seen:
                seen.add(link)
                to_visit.append(link)

    # Every link of the home page and of the example site was followed.
    for path in ("/api/time", "/echo", "/stream", "/slow?seconds=3", "/static/style.css", "/site/", "/site",
                 "/site/docs/", "/site/docs", "/site/hello.txt"):
        assert origin + path in visited, f"{path} was not linked: {sorted(visited)}"


def test_the_example_site_is_styled_and_the_echo_form_submits(browser, demo):
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.wait import WebDriverWait

    host, port = demo.address
    origin = f"http://{host}:{port}"
    path, status = visit(browser, origin + "/site/")
    assert (path, status) == ("/site/", 200)
    check_page(browser, "/site/")
    # css/site.css (sent gzip-compressed from its .gz sibling when the browser accepts it).
    assert style(browser, "h1", "color") == "rgb(43, 108, 176)"

    path, status = visit(browser, origin + "/echo")
    assert (path, status) == ("/echo", 200)
    field = browser.find_element("name", "name")
    field.clear()
    field.send_keys("Grüße from Chromium")
    form_page = browser.find_element("tag name", "main")
    browser.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, PAGE_LOAD_TIMEOUT).until(staleness_of(form_page))
    # The old page is gone; the answer may still be loading, so its text is read in one script
    # once it has loaded (an element found earlier can leave the document before it is read).
    WebDriverWait(browser, PAGE_LOAD_TIMEOUT).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )
    assert browser.execute_script(NAVIGATION_STATUS) == 200
    text = browser.execute_script("return document.querySelector('main').innerText")
    assert "application/x-www-form-urlencoded" in text, text
    assert "Grüße from Chromium" in text, text
    check_page(browser, "/echo (POST)")
