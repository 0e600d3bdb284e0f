"""Browser tests (Playwright driving Debian's Chromium) against a live ASGI server; select with ``-m e2e``."""
