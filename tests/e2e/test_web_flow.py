"""The web UI end to end, in headless Chromium against a real ``gridfleet serve`` and the local fake Binance.

One scenario (each step needs the previous one): register (UI) → log in (UI) → add an exchange account pointing at
the fake exchange (UI) → create a live grid bot against it (the bot form) →
start it on the bot detail page → a fill arrives live over the websocket (no reload) → a batch pause/resume from
the bots list, seen live on the detail page → export fills as CSV (the file's content is checked) → an admin
creates a voucher, the user redeems it and sees the balance. Screenshots of the main pages in both languages go to
test-artifacts/screenshots/<lang>/<page>.png. Any browser console error, page error or 5xx answer fails the test.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS_DIR
from tests.e2e.conftest import ADMIN, Server

pytestmark = pytest.mark.browser

USER = ("e2etrader", "Trader-pass-12345")
AGENT = ("e2eagent", "Agent-pass-12345")
SHOTS = ARTIFACTS_DIR / "screenshots"
WAIT = 30_000
GRID = {"lower": "99000", "upper": "101000", "levels": "20", "qty": "0.01"}
# the bot form asks for candles of its exchange (binance) before an account is picked: with no network, 503
ALLOWED = re.compile(r"/api/v1/market/candles/\?symbol=[^ ]*&exchange=binance&")


class Problems:
    """Console errors, page errors and 5xx answers seen by any page of a context."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def watch(self, page: Any) -> Any:
        def console(m: Any) -> None:
            if m.type == "error" and not (ALLOWED.search(m.location.get("url") or "") and "503" in m.text):
                self.lines.append(f"console.{m.type}: {m.text} ({m.location.get('url')})")

        page.on("console", console)
        page.on("pageerror", lambda e: self.lines.append(f"pageerror: {e}"))
        page.on("response", lambda r: self.lines.append(f"HTTP {r.status} {r.url}")
                if r.status >= 500 and not (r.status == 503 and ALLOWED.search(r.url)) else None)
        return page


def new_page(browser: Any, problems: Problems, lang: str = "en") -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale=lang, accept_downloads=True)
    context.add_init_script(f"localStorage.setItem('gridfleet.locale', '{lang}')")
    context.set_default_timeout(WAIT)
    return problems.watch(context.new_page())


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("#form_item_username", username)
    page.fill("#form_item_password", password)
    page.click("[data-test=login-submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def shoot(page: Any, base: str, lang: str, name: str, path: str, ready: str | None = None) -> Path:
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    if ready:
        page.wait_for_selector(ready)
    page.wait_for_timeout(300)
    out = SHOTS / lang / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out), full_page=True)
    return out


def fill_rows(page: Any) -> int:
    return int(page.locator("[data-test=fills-table] tbody tr.ant-table-row").count())


def test_trader_journey(server: Server, browser: Any) -> None:
    base = server.base
    problems = Problems()

    # 1. register through the form (it logs the new user in)
    page = new_page(browser, problems)
    page.goto(base + "/register")
    page.fill("#form_item_username", USER[0])
    page.fill("#form_item_email", f"{USER[0]}@example.com")
    page.fill("#form_item_password", USER[1])
    page.fill("#form_item_confirm", USER[1])
    page.click("[data-test=register-submit]")
    page.wait_for_url(lambda url: "/register" not in url)
    page.context.close()

    # 2. log in through the form in a fresh browser context
    page = new_page(browser, problems)
    login(page, base, *USER)

    # 3. an exchange account pointing at the fake exchange (loopback is allowed for this serve)
    page.goto(base + "/accounts")
    page.click("[data-test=add-account]")
    page.fill("#form_item_label", "fake binance")
    page.fill("#form_item_api_key", "test")
    page.fill("#form_item_secret", "test")
    page.click(".gf-advanced")
    page.fill("#form_item_api_url", server.fake_exchange)
    page.click(".ant-modal-footer .ant-btn-primary")
    page.wait_for_selector("[data-test=accounts-table] >> text=fake binance")

    # 4. a live grid bot on that account, through the bot form
    page.goto(base + "/bots/new")
    page.wait_for_selector("[data-testid=save-bot]")
    field = lambda label: page.locator(f".ant-form-item:has(label:text-is('{label}'))")  # noqa: E731
    field("Name").locator("input").fill("e2e grid")
    page.click(".ant-radio-button-wrapper:has-text('Live')")
    field("Exchange account").locator(".ant-select-selector").click()
    page.click(".ant-select-dropdown:visible .ant-select-item-option:has-text('fake binance')")
    field("Lower price").locator("input").fill(GRID["lower"])
    field("Upper price").locator("input").fill(GRID["upper"])
    field("Levels").locator("input").fill(GRID["levels"])
    field("Investment").locator("input").fill("")
    field("Qty per order").locator("input").fill(GRID["qty"])
    page.click("[data-testid=save-bot]")
    page.wait_for_url(re.compile(r"/bots/\d+$"))
    bot_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    token = server.token(*USER)
    bot = server.api("GET", f"/api/v1/bots/{bot_id}/", token)
    assert bot["mode"] == "live" and bot["config"]["grid"]["lower"] == GRID["lower"], bot

    # 5. start it from the bot detail page; fills arrive over the websocket while the page stays open
    page.goto(f"{base}/bots/{bot_id}")
    page.wait_for_selector("[data-test=action-start]")
    page.click(".ant-tabs-tab:has-text('Fills (0)')")
    assert fill_rows(page) == 0
    page.click("[data-test=action-start]")
    page.click(".ant-modal-confirm-btns .ant-btn-primary")
    page.wait_for_selector("[data-test=bot-status] >> text=Running")
    url_before = page.url
    page.wait_for_function(
        "() => document.querySelectorAll('[data-test=fills-table] tbody tr.ant-table-row').length > 0", timeout=45_000)
    assert page.url == url_before
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload happened
    first_fill = page.locator("[data-test=fills-table] tbody tr.ant-table-row").first.inner_text()
    assert re.search(r"\b(Buy|Sell)\b", first_fill), first_fill
    page.click(".ant-tabs-tab:has-text('Open orders')")
    page.wait_for_selector("[data-test=open-orders] tbody tr.ant-table-row")

    # 6. batch pause + resume from the bots list; the detail page (another tab) sees the status change live
    detail = page
    bots_page = problems.watch(page.context.new_page())
    bots_page.goto(base + "/bots")
    bots_page.wait_for_selector(f"tr[data-row-key='{bot_id}']")
    bots_page.click(f"tr[data-row-key='{bot_id}'] .ant-checkbox-input")
    bots_page.click(".batch-bar button:has-text('Pause')")
    bots_page.wait_for_selector(".ant-modal-content:visible")  # the per-bot results
    bots_page.click(".ant-modal-wrap:visible .ant-modal-close")
    bots_page.wait_for_selector(".ant-modal-content", state="hidden")
    detail.wait_for_selector("[data-test=bot-status] >> text=Paused")
    bots_page.click(".batch-bar button:has-text('Resume')")
    detail.wait_for_selector("[data-test=bot-status] >> text=Running")
    assert server.api("GET", f"/api/v1/bots/{bot_id}/", token)["status"] == "running"
    bots_page.close()

    # 7. export the fills as CSV from the trades page and read the file
    page.goto(base + "/trades")
    page.wait_for_selector("[data-test=fills-table] tbody tr.ant-table-row")
    with page.expect_download() as download_info:
        page.click("[data-test=export-csv]")
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows, text[:500]
    assert {"side", "price", "amount"} <= set(rows[0]), rows[0].keys()
    assert all(r["symbol"] == "BTC/USDT" for r in rows)
    assert {r["side"] for r in rows} <= {"buy", "sell"}

    # 8. billing: the admin creates a voucher, the user redeems it and sees the balance
    admin = new_page(browser, problems)
    login(admin, base, *ADMIN)
    admin.goto(base + "/admin/billing")
    admin.fill("[data-test=voucher-amount] input, input[data-test=voucher-amount]", "25")
    admin.click("[data-test=create-vouchers]")
    code = admin.locator("[data-test=new-code]").first.inner_text().split()[0]
    assert len(code) >= 8, code
    page.goto(base + "/billing")
    page.fill("[data-test=voucher-code] input, input[data-test=voucher-code]", code)
    page.click("[data-test=redeem]")
    page.wait_for_selector("[data-test=billing-balance] >> text=25")
    assert server.api("GET", "/api/v1/billing/balance/", token)["balance"] in ("25", "25.00000000", "25.0")

    # 9. the admin makes a second user an agent from the users page; the agent sees its page
    server.api("POST", "/api/v1/auth/register/", body={"username": AGENT[0], "email": "agent@example.com",
                                                       "password": AGENT[1]})
    admin.goto(base + "/admin/users")
    row = admin.locator("[data-test=users-table] tr", has_text=AGENT[0])
    row.locator(".ant-select").first.click()
    admin.click(".ant-select-dropdown:visible .ant-select-item-option[title='Agent']")
    admin.wait_for_selector(".ant-message >> text=Saved")
    agent = new_page(browser, problems)
    login(agent, base, *AGENT)
    agent.goto(base + "/agent")
    agent.click("[data-test=create-code]")
    agent.wait_for_function(
        "() => /[A-Z0-9]{4,}/.test(document.querySelector('[data-test=referral-code]').textContent)")

    # 10. screenshots of the main pages in both languages (English first, then Chinese)
    user_pages = [("dashboard", "/dashboard", None), ("bots", "/bots", None),
                  ("bot-detail", f"/bots/{bot_id}", "[data-test=price-chart]"), ("trades", "/trades", None),
                  ("analytics", "/analytics", "[data-test=metrics]"), ("billing", "/billing", None),
                  ("accounts", "/accounts", None), ("notifications", "/notifications", None)]
    admin_pages = [("admin-users", "/admin/users", "[data-test=users-table]"),
                   ("admin-billing", "/admin/billing", None), ("admin-analytics", "/analytics", "[data-test=per-user]")]
    for lang, user_page, admin_page, agent_page in (("en", page, admin, agent), ("zh-CN", None, None, None)):
        if user_page is None or admin_page is None or agent_page is None:
            user_page, admin_page, agent_page = (new_page(browser, problems, lang) for _ in range(3))
            login(user_page, base, *USER)
            login(admin_page, base, *ADMIN)
            login(agent_page, base, *AGENT)
        for name, path, ready in user_pages:
            shoot(user_page, base, lang, name, path, ready)
        for name, path, ready in admin_pages:
            shoot(admin_page, base, lang, name, path, ready)
        shoot(agent_page, base, lang, "agent", "/agent", "[data-test=referral-code]")
        user_page.goto(f"{base}/bots/{bot_id}")
        user_page.click(".ant-tabs-tab:has-text('{}')".format("Event log" if lang == "en" else "事件日志"))
        user_page.wait_for_selector("[data-test=event-log] tbody tr")
        user_page.screenshot(path=str(SHOTS / lang / "bot-detail-events.png"), full_page=True)
    assert (SHOTS / "zh-CN" / "bot-detail.png").stat().st_size > 10_000

    assert not problems.lines, "\n".join(problems.lines)
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 2000:][:6000]
