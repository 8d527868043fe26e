"""Screenshots of the web UI through a running `gridfleet serve`, and the browser console's errors.

    .venv/bin/python frontend/scripts/screenshot.py --base http://127.0.0.1:8765 --out /tmp/shots \
        --user admin --password admin-pass-123 --lang zh-CN /login /dashboard /accounts

Logs in first when --user is given (through the login form). Exits 1 when the page logged console errors or
failed requests (other than the ones listed with --allow). A development aid; the end-to-end suite is separate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8765")
    parser.add_argument("--out", default="/tmp/gridfleet-shots")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--lang", default="en", choices=["en", "zh-CN"])
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--wait", type=int, default=1200, help="ms to wait after load")
    parser.add_argument("paths", nargs="*", default=["/login"])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": args.width, "height": args.height}, locale=args.lang)
        context.add_init_script(f"localStorage.setItem('gridfleet.locale', '{args.lang}')")
        page = context.new_page()
        def on_console(m: object) -> None:
            kind, text = getattr(m, "type", ""), getattr(m, "text", "")
            if kind in ("error", "warning"):
                problems.append(f"console.{kind}: {text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 500 else None)
        if args.user:
            page.goto(args.base + "/login")
            page.fill("#form_item_username", args.user)
            page.fill("#form_item_password", args.password or "")
            page.click("[data-test=login-submit]")
            page.wait_for_url(lambda url: "/login" not in url, timeout=15000)
        for path in args.paths:
            page.goto(args.base + path)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(args.wait)
            name = (path.strip("/").replace("/", "_").replace("?", "_") or "root") + f".{args.lang}.png"
            page.screenshot(path=str(out / name), full_page=True)
            print(out / name)
        browser.close()
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
