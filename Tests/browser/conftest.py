"""Fixtures of the web console's browser tests.

`.ci/browser-tests` starts a real `herald serve` and passes it here through the environment:
HERALD_URL, HERALD_EXECUTABLE and HERALD_DATA (the `herald` it runs and its data folder, for
`herald keys`), HERALD_ADMIN_KEY (manage, namespace), HERALD_SCOPED_KEY (listen and send on the
queue HERALD_SCOPED_ENTITY), HERALD_SCREENSHOTS (a git-ignored folder). The browser is Debian's chromium,
driven through /usr/bin/chromedriver, headless.
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["HERALD_URL"]
HERALD = os.environ["HERALD_EXECUTABLE"]
DATA = os.environ["HERALD_DATA"]
ADMIN_KEY = os.environ["HERALD_ADMIN_KEY"]
SCOPED_KEY = os.environ["HERALD_SCOPED_KEY"]
SCOPED_ENTITY = os.environ["HERALD_SCOPED_ENTITY"]
SCREENSHOTS = os.environ["HERALD_SCREENSHOTS"]
CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HERALD_CHROMEDRIVER", "/usr/bin/chromedriver")


class Api:
    """The HTTP API, called with the admin key (urllib: nothing beyond the standard library)."""

    def __init__(self, key=ADMIN_KEY):
        self.key = key

    def call(self, method, path, body=None, expected=(200, 201, 202, 204)):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(URL + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        assert status in expected, f"{method} {path}: {status} {text}"
        return json.loads(text) if text else None

    def create_queue(self, name, **options):
        return self.call("PUT", f"/v1/queues/{name}", options or None)

    def send(self, queue, messages):
        for start in range(0, len(messages), 100):
            self.call("POST", "/v1/messages/send", {"entity": {"queue": queue}, "messages": messages[start:start + 100]})

    def counts(self, queue):
        return self.call("POST", "/v1/messages/counts", {"entity": {"queue": queue}})

    def dead_letter_all(self, queue, reason_of):
        """Receives every active message of `queue` and dead-letters it with `reason_of(message)`."""
        while True:
            answer = self.call("POST", "/v1/messages/receive", {"entity": {"queue": queue}, "maxCount": 100})
            messages = answer["messages"]
            if not messages:
                return
            settlements = [{"lockToken": m["lockToken"], "deadLetterReason": reason_of(m)} for m in messages]
            self.call("POST", "/v1/transactions/commit", {"settlements": settlements})

    def peek_all(self, entity):
        """Every message of `entity`, peeked page by page."""
        found, start = [], 0
        while True:
            page = self.call("POST", "/v1/messages/peek", {"entity": entity, "fromSequenceNumber": start, "maxCount": 500})["messages"]
            found += page
            if len(page) < 500:
                return found
            start = page[-1]["sequenceNumber"] + 1


@pytest.fixture(scope="session")
def api():
    return Api()


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The system chromedriver, named explicitly: selenium-manager is never asked for a driver.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=20, message="condition"):
    """Waits until `condition(driver)` is truthy; returns its value. The page redraws what it
    refreshes, so an element gone (or not there yet) between two looks is looked for again."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=ignored).until(lambda d: condition(d), message)


def click(driver, selector, timeout=20):
    """Clicks the element `selector` names, looking it up again if the page redrew it meanwhile."""
    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True
    wait(driver, clicked, timeout, message=f"click {selector}")


def text_of(driver, selector):
    elements = driver.find_elements(By.CSS_SELECTOR, selector)
    return elements[0].text if elements else None


def screenshot(driver, name):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, name))


def sign_in(driver, key):
    driver.get(URL + "/")
    driver.execute_script("sessionStorage.clear()")
    driver.get(URL + "/")
    field = wait(driver, lambda d: d.find_element(By.ID, "key") if d.find_element(By.ID, "key").is_displayed() else None)
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "who").text != "", message="signed in")


def confirm(driver):
    """Clicks Confirm in the page's confirmation dialog."""
    button = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "dialog#confirm[open] button[value=yes]"))
    button.click()


def herald_keys(*arguments):
    """Runs `herald keys ARGUMENTS --data DATA`; returns its standard output."""
    result = subprocess.run([HERALD, "keys", *arguments, "--data", DATA], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"herald keys {' '.join(arguments)}: {result.stderr}"
    return result.stdout.strip()


def now_ms():
    return int(time.time() * 1000)
