"""Screenshots of the staff pages for the README, from a running demo (bin/demo).

    .venv/bin/python tools/screenshots.py [http://127.0.0.1:8000]

Drives Debian's Chromium (apt-get install chromium fonts-noto-cjk) through Playwright.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def login(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/staff/login/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def main(base: str) -> None:
    logins = json.loads((ROOT / ".data" / "demo-logins.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 760}, locale="zh-CN")
        page.goto(f"{base}/staff/login/")
        page.screenshot(path=OUT / "staff-login.png")
        login(page, base, "dr_li", logins["dr_li"])
        page.screenshot(path=OUT / "staff-home.png")
        page.click("text=退出登录")
        login(page, base, "operator_admin", logins["operator_admin"])
        for name, path in [("admin-patients", "/admin/accounts/patientprofile/"),
                           ("admin-doctors", "/admin/accounts/doctorprofile/"),
                           ("admin-audit-log", "/admin/core/auditevent/"),
                           ("admin-payments", "/admin/payments/paymentintent/")]:
            page.goto(base + path)
            page.screenshot(path=OUT / f"{name}.png")
        page.goto(base + "/admin/payments/paymentintent/")
        page.click("#result_list tbody tr th a")  # the newest intent (run manage.py demo_pay first)
        page.click("text=发起退款")
        page.screenshot(path=OUT / "admin-refund.png", full_page=True)
        browser.close()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
