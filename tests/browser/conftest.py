"""The browser fixtures (chromium via Playwright, the screenshot folder) for every browser test."""

from tests.browser.test_ui import browser, shots  # noqa: F401
