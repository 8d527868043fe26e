"""The permission matrix: every ``/api/v1/`` endpoint against every role, nothing leaking across owners.

The cast (see ``conftest.py``): an admin, an agent, the agent's client, an unrelated user ("stranger") and an
anonymous caller. Each of the four users owns one of everything (exchange account, bot with a config snapshot,
group, risk template, order, fill, journal entry, equity snapshot, event, backtest, notification…), each tagged
with a marker string unique to its owner. The rules checked (see ``users/permissions.py``):

* anonymous callers get 401 everywhere (except the few public auth endpoints);
* an admin reads everything; an agent reads its own objects and its client's; a user reads its own;
* an object outside the caller's scope is a 404 identical to the 404 of an object that does not exist
  (nothing leaks about its existence), for reads and for writes;
* an agent writing its client's object gets 403 or 404 (read-only), or 400 for an action that merely uses it
  (applying a client's template to one's own bots, here with an empty body) — the database check below holds;
* a 2xx response never carries the marker of an owner outside the caller's scope, no refusal carries any
  marker, and no response ever carries a plain exchange secret;
* no refused request changes anything in the database;
* ids of other people's objects inside request bodies change nothing, and a filter given someone else's id
  (``?bot=``, ``?owner=``…) answers exactly like one given a missing id.

The generic part is built from the URL resolver, so endpoints added later are covered without editing this
file; an endpoint whose path parameters cannot be filled is reported as skipped (with the reason).
Explicit cases follow for the users, auth and agents endpoints, whose rules are not the generic ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.response import Response
from rest_framework.test import APIClient

from gridfleet.server.users.models import User

OWNERS = ("admin", "agent", "client", "stranger")
CALLERS = (*OWNERS, "anon")
MARK = {o: f"MKQ{o.upper()}ZX" for o in OWNERS}
SECRETS = {o: (f"plainkey-{o}-0123456789", f"plainsecret-{o}-0123456789") for o in OWNERS}
VISIBLE = {"admin": set(OWNERS), "agent": {"agent", "client"}, "client": {"client"}, "stranger": {"stranger"}}
MISSING = "987654321"

API = "/api/v1/"
# Collections anonymous callers may read (none so far): add a path here, relative to /api/v1/, to make one public.
PUBLIC_GET: set[str] = set()
# Paths with their own rules, tested explicitly below (prefixes, relative to /api/v1/).
EXPLICIT = ("auth/", "users/", "agents/", "billing/",  # billing: tests/server/billing, tests/server/fees
            "market/")  # market data needs ?symbol= (400 without): tests/server/web_api/test_market_permissions.py
# Models whose rows are personal work (not fleet objects): only the owner is sure to read them; an admin or an agent
# may or may not (both are acceptable, and anything else still follows the rules).
PERSONAL = {"realtime.Notification"}
# Last path segment before a {pk} -> model label, when the view does not say.
SEGMENT_MODELS = {
    "users": "users.User", "bots": "bots.Bot", "groups": "bots.BotGroup", "risk-templates": "bots.RiskTemplate",
    "exchange-accounts": "exchange_accounts.ExchangeAccount", "orders": "trading.Order", "fills": "trading.Fill",
    "events": "trading.JournalEntry", "journal": "trading.JournalEntry", "backtests": "analytics.BacktestJob",
    "notifications": "realtime.Notification", "equity": "trading.EquitySnapshot",
}
# Path parameter (without _pk/_id) -> model label.
PARAM_MODELS = {
    "bot": "bots.Bot", "group": "bots.BotGroup", "bot_group": "bots.BotGroup", "template": "bots.RiskTemplate",
    "risk_template": "bots.RiskTemplate", "account": "exchange_accounts.ExchangeAccount",
    "exchange_account": "exchange_accounts.ExchangeAccount", "user": "users.User", "order": "trading.Order",
    "fill": "trading.Fill", "backtest": "analytics.BacktestJob", "snapshot": "bots.ConfigSnapshot",
}


# discovery ----------------------------------------------------------------------------------------------------------


def _template(route: str) -> str:
    """Turn a joined Django route (path and regex pieces) into ``/api/v1/bots/{pk}/``-style text."""
    out, i = [], 0
    while i < len(route):
        if route.startswith("(?P<", i):
            end = route.index(">", i)
            name = route[i + 4:end]
            depth, j = 0, i
            while True:  # skip to the matching parenthesis
                depth += {"(": 1, ")": -1}.get(route[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append("{" + name + "}")
            i = j + 1
        elif route[i] == "<":
            end = route.index(">", i)
            out.append("{" + route[i + 1:end].split(":")[-1] + "}")
            i = end + 1
        elif route[i] in "^$":
            i += 1
        else:
            out.append(route[i])
            i += 1
    return "/" + "".join(out)


@dataclass(frozen=True)
class Endpoint:
    """One URL pattern under /api/v1/."""

    template: str
    methods: tuple[str, ...]
    view: type

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.template)

    def __str__(self) -> str:
        return f"{self.template} {','.join(self.methods)}"


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def discover() -> list[Endpoint]:
    """Return every endpoint under /api/v1/ with the HTTP methods it serves."""
    found: dict[str, Endpoint] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        template = _template(route)
        if not template.startswith(API) or "{format}" in template or re.search(r"[()\[\]\\?*+|]", template):
            continue
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view is None:
            continue
        if actions:
            methods = tuple(sorted(m.upper() for m in actions))
        else:
            methods = tuple(sorted(m.upper() for m in view.http_method_names
                                   if m not in ("options", "head", "trace") and hasattr(view, m)))
        if template not in found:
            found[template] = Endpoint(template, methods, view)
    return sorted(found.values(), key=lambda e: e.template)


def _generic(endpoint: Endpoint) -> bool:
    return not endpoint.template[len(API):].startswith(EXPLICIT)


ENDPOINTS = discover()
COLLECTIONS = [e for e in ENDPOINTS if _generic(e) and not e.params]
OBJECTS = [e for e in ENDPOINTS if _generic(e) and e.params]


def _main_model(endpoint: Endpoint) -> str | None:
    """Return the label of the model the endpoint's ``{pk}``/``{id}`` designates."""
    segments = endpoint.template.strip("/").split("/")
    for index, segment in enumerate(segments):
        if segment in ("{pk}", "{id}") and index and segments[index - 1] in SEGMENT_MODELS:
            return SEGMENT_MODELS[segments[index - 1]]
    queryset = getattr(endpoint.view, "queryset", None)
    if queryset is not None:
        return str(queryset.model._meta.label)
    serializer = getattr(endpoint.view, "serializer_class", None)
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    return str(model._meta.label) if model is not None else None


# the cast and their objects --------------------------------------------------------------------------------------


def _model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _bot_config() -> dict[str, Any]:
    from gridfleet.engine.config import config_to_dict, parse_config

    return config_to_dict(parse_config({"symbol": "BTC/USDT", "grid": {"type": "arithmetic", "lower": 100000,
                                                                       "upper": 120000, "levels": 10},
                                        "investment": 1000}))


def _seed_owner(owner: str, user: User) -> dict[str, models.Model]:
    """Create one of everything for ``user``, every text tagged with the owner's marker."""
    from gridfleet.server.bots.models import Bot, BotGroup, ConfigSnapshot, RiskTemplate
    from gridfleet.server.exchange_accounts.models import ExchangeAccount
    from gridfleet.server.trading.models import BotEventLog, EquitySnapshot, Fill, JournalEntry, Order

    mark = MARK[owner]
    key, secret = SECRETS[owner]
    account = ExchangeAccount(owner=user, label=f"{mark} account", exchange="binance")
    account.set_credentials(key, secret)
    account.save()
    config = _bot_config()
    bot = Bot.objects.create(owner=user, name=f"{mark} bot", symbol="BTC/USDT", config=config,
                             exchange_account=account, status_message=mark)
    group = BotGroup.objects.create(owner=user, name=f"{mark} group")
    bot.groups.add(group)
    snapshot = ConfigSnapshot.objects.create(bot=bot, version=1, config=config, note=mark, created_by=user)
    template = RiskTemplate.objects.create(owner=user, name=f"{mark} template", description=mark, rules=[])
    event = BotEventLog.objects.create(bot=bot, kind="start", ts=1_700_000_000_000, payload={"mark": mark})
    order = Order.objects.create(bot=bot, client_id=f"{mark}-o1", symbol="BTC/USDT", side="buy", type="limit",
                                 amount=Decimal("0.01"), price=Decimal("100000"), level=1, tag=mark, status="open",
                                 reason=mark)
    fill = Fill.objects.create(bot=bot, trade_id=f"{mark}-t1", client_id=f"{mark}-o1", symbol="BTC/USDT",
                               side="buy", price=Decimal("100000"), amount=Decimal("0.01"), fee=Decimal("0.00001"),
                               fee_currency="BTC", ts=1_700_000_000_000, is_maker=True, order_complete=True,
                               event=event)
    journal = JournalEntry.objects.create(bot=bot, ts=1_700_000_000_000, kind="warning", message=mark,
                                          data={"mark": mark})
    equity = EquitySnapshot.objects.create(bot=bot, ts=1_700_000_000_000, price=Decimal("100000"),
                                           equity=Decimal("1000"), grid_profit=Decimal("1"), realized_pnl=Decimal("1"),
                                           unrealized_pnl=Decimal("0"), base=Decimal("0.01"),
                                           quote_flow=Decimal("-1000"))
    objects: dict[str, models.Model] = {
        "users.User": user, "exchange_accounts.ExchangeAccount": account, "bots.Bot": bot, "bots.BotGroup": group,
        "bots.ConfigSnapshot": snapshot, "bots.RiskTemplate": template, "trading.BotEventLog": event,
        "trading.Order": order, "trading.Fill": fill, "trading.JournalEntry": journal,
        "trading.EquitySnapshot": equity,
    }
    backtest = _model("analytics.BacktestJob")
    if backtest is not None:
        objects["analytics.BacktestJob"] = backtest.objects.create(
            owner=user, config=config, data={"mark": mark}, status="done", summary={"mark": mark})
    notification = _model("realtime.Notification")
    if notification is not None:
        objects["realtime.Notification"] = notification.objects.create(user=user, kind="alert", title=mark, body=mark)
    return objects


@pytest.fixture
def world(admin_user: User, agent_user: User, client_user: User, stranger_user: User,
          api_for: Callable[[User | None], APIClient]) -> World:
    users = {"admin": admin_user, "agent": agent_user, "client": client_user, "stranger": stranger_user}
    return World({o: _seed_owner(o, u) for o, u in users.items()},
                 {**{o: api_for(u) for o, u in users.items()}, "anon": api_for(None)})


@dataclass
class World:
    """The seeded objects per owner and an API client per caller."""

    objects: dict[str, dict[str, models.Model]]
    api: dict[str, APIClient]

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every seeded model (and the users, minus last_login)."""
        labels = {label for objects in self.objects.values() for label in objects}
        rows = {}
        for label in sorted(labels):
            model = apps.get_model(label)
            values = list(model.objects.order_by("pk").values())
            for row in values:
                row.pop("last_login", None)
            rows[label] = values
        return rows


def _call(api: APIClient, method: str, url: str) -> Response:
    return getattr(api, method.lower())(url, {} if method != "GET" else None, format="json")  # type: ignore[no-any-return]


def _text(response: Response) -> str:
    return response.content.decode(errors="replace")


def _assert_no_secret(response: Response, where: str) -> None:
    text = _text(response)
    for key, secret in SECRETS.values():
        assert key not in text and secret not in text, f"{where}: a plain exchange credential leaked"


def _assert_only_markers_of(response: Response, visible: set[str], where: str) -> None:
    text = _text(response)
    leaked = [o for o in OWNERS if o not in visible and MARK[o] in text]
    assert not leaked, f"{where}: data of {leaked} leaked: {text[:300]}"
    _assert_no_secret(response, where)


def _fill(endpoint: Endpoint, objects: dict[str, models.Model] | None) -> str | None:
    """Return the URL with every parameter filled from one owner's objects (None: the missing ones)."""
    main = _main_model(endpoint)
    url = endpoint.template
    for param in endpoint.params:
        if objects is None:
            value: Any = MISSING
        elif param in ("pk", "id"):
            if main not in objects:
                return None
            value = objects[main].pk
        elif param == "version":
            value = objects["bots.ConfigSnapshot"].version  # type: ignore[attr-defined]
        elif param == "runtime_id":
            value = objects["bots.Bot"].runtime_id  # type: ignore[attr-defined]
        else:
            label = PARAM_MODELS.get(re.sub(r"_(pk|id)$", "", param))
            if label is None or label not in objects:
                return None
            value = objects[label].pk
        url = url.replace("{" + param + "}", str(value))
    return url


# the generic matrix ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", COLLECTIONS, ids=str)
def test_collection(endpoint: Endpoint, world: World) -> None:
    """Lists: 401 for anonymous; 200 (or 403 for role-restricted lists) with only in-scope data."""
    before = world.state()
    for caller in CALLERS:
        for method in endpoint.methods:
            if method != "GET" and caller != "anon":
                continue  # creations are each app's business; refusals of anonymous writes are checked here
            response = _call(world.api[caller], method, endpoint.template)
            where = f"{caller} {method} {endpoint.template}"
            if caller == "anon":
                public = method == "GET" and endpoint.template[len(API):] in PUBLIC_GET
                assert response.status_code in ({200} if public else {401}), f"{where}: {response.status_code}"
                _assert_only_markers_of(response, set(), where)
                continue
            allowed = {200} if caller == "admin" else {200, 403}
            assert response.status_code in allowed, f"{where}: {response.status_code} {_text(response)[:300]}"
            _assert_only_markers_of(response, VISIBLE[caller] if response.status_code == 200 else set(), where)
    assert world.state() == before, f"{endpoint}: a read or a refused request changed the database"


def _expected_read(caller: str, owner: str, label: str | None) -> set[int]:
    if caller == "anon":
        return {401}
    if owner in VISIBLE[caller]:
        return {200, 404} if label in PERSONAL and caller != owner else {200}
    return {404}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OBJECTS, ids=str)
def test_object(endpoint: Endpoint, world: World) -> None:
    """One object: owners (and admins, and agents for their clients) read it; others get the 404 of a missing one."""
    label = _main_model(endpoint)
    urls = {owner: _fill(endpoint, world.objects[owner]) for owner in OWNERS}
    if any(url is None for url in urls.values()):
        pytest.skip(f"cannot fill the path parameters {endpoint.params} (model {label}): add a seed or a mapping")
    missing_url = _fill(endpoint, None)
    assert missing_url is not None
    before = world.state()
    for caller in CALLERS:
        missing = {m: _call(world.api[caller], m, missing_url) for m in endpoint.methods if m != "GET"} \
            if caller != "anon" else {}
        if "GET" in endpoint.methods and caller != "anon":
            missing["GET"] = _call(world.api[caller], "GET", missing_url)
        for owner in OWNERS:
            url = urls[owner]
            assert url is not None
            for method in endpoint.methods:
                where = f"{caller} {method} {owner}'s {endpoint.template}"
                if method == "GET":
                    expected = _expected_read(caller, owner, label)
                elif caller == "admin" or caller == owner:
                    continue  # allowed changes are each app's business
                elif caller == "anon":
                    expected = {401}
                elif owner in VISIBLE[caller]:
                    expected = {400, 403, 404}  # 400: an action that only reads it (apply a template), empty body
                else:
                    expected = {404}
                response = _call(world.api[caller], method, url)
                assert response.status_code in expected, \
                    f"{where}: {response.status_code} not in {expected}: {_text(response)[:300]}"
                if response.status_code < 300:
                    _assert_only_markers_of(response, VISIBLE[caller], where)
                    continue
                _assert_only_markers_of(response, set(), where)
                if response.status_code == 404:
                    twin = missing[method]
                    assert (twin.status_code, _text(twin)) == (404, _text(response)), \
                        f"{where}: the refusal differs from a missing object's: {_text(twin)[:200]}"
            if caller != "anon" and owner not in VISIBLE[caller]:  # OPTIONS lists allowed actions: no hints either
                options, twin = world.api[caller].options(url), world.api[caller].options(missing_url)
                assert (options.status_code, _text(options)) == (twin.status_code, _text(twin)), \
                    f"{caller} OPTIONS {owner}'s {endpoint.template} differs from a missing object's"
    assert world.state() == before, f"{endpoint}: a read or a refused request changed the database"


@pytest.mark.django_db
def test_shared_risk_template_is_readable_by_all_and_writable_by_admins_only(world: World) -> None:
    """A template without owner is shared: every user reads it, only admins change it."""
    if not any(e.template == f"{API}risk-templates/{{pk}}/" for e in ENDPOINTS):
        pytest.skip("no /risk-templates/{pk}/ endpoint")
    from gridfleet.server.bots.models import RiskTemplate

    shared = RiskTemplate.objects.create(owner=None, name="shared template", rules=[])
    url = f"{API}risk-templates/{shared.pk}/"
    before = world.state()
    for caller in OWNERS:
        assert world.api[caller].get(url).status_code == 200, caller
    assert world.api["anon"].get(url).status_code == 401
    for caller in ("agent", "client", "stranger"):
        assert world.api[caller].patch(url, {"name": "mine"}, format="json").status_code in (403, 404), caller
        assert world.api[caller].delete(url).status_code in (403, 404), caller
    assert world.state() == before
    assert world.api["admin"].patch(url, {"name": "renamed"}, format="json").status_code == 200


def test_the_matrix_covers_the_known_endpoints() -> None:
    """Discovery works: the endpoints the apps are known to have are in the matrix (others join automatically)."""
    templates = {e.template for e in ENDPOINTS}
    assert {f"{API}users/", f"{API}users/{{pk}}/", f"{API}auth/me/"} <= templates
    for endpoint in OBJECTS:
        assert _main_model(endpoint) is not None, endpoint


# explicit cases: users, auth, agents ------------------------------------------------------------------------------

USER_CASES: list[tuple[str, str, str, str, int]] = [
    # (caller, method, path, target owner ("" for none), expected status)
    *[(c, "GET", "users/", "", s) for c, s in
      (("admin", 200), ("agent", 200), ("client", 403), ("stranger", 403), ("anon", 401))],
    *[(c, "GET", "users/{pk}/", t, s) for c, t, s in (
        ("admin", "admin", 200), ("admin", "agent", 200), ("admin", "client", 200), ("admin", "stranger", 200),
        ("agent", "client", 200), ("agent", "agent", 404), ("agent", "admin", 404), ("agent", "stranger", 404),
        ("client", "client", 403), ("client", "agent", 403), ("stranger", "client", 403),
        ("anon", "client", 401))],
    *[(c, "PATCH", "users/{pk}/", t, s) for c, t, s in (
        ("admin", "stranger", 200), ("agent", "client", 403), ("agent", "stranger", 404), ("agent", "agent", 404),
        ("client", "client", 403), ("stranger", "client", 403), ("anon", "client", 401))],
    *[(c, "GET", "auth/me/", "", s) for c, s in
      (("admin", 200), ("agent", 200), ("client", 200), ("stranger", 200), ("anon", 401))],
    *[(c, "GET", "agents/me/clients/", "", s) for c, s in
      (("admin", 403), ("agent", 200), ("client", 403), ("stranger", 403), ("anon", 401))],
    *[(c, "POST", "agents/referral-code/", "", s) for c, s in
      (("admin", 403), ("agent", 200), ("client", 403), ("stranger", 403), ("anon", 401))],
    *[(c, "POST", "auth/password/change/", "", s) for c, s in (("client", 400), ("anon", 401))],
]


@pytest.mark.django_db
@pytest.mark.parametrize(("caller", "method", "path", "target", "status"), USER_CASES,
                         ids=[f"{c}-{m}-{p}-{t}" for c, m, p, t, _ in USER_CASES])
def test_users_endpoints(world: World, caller: str, method: str, path: str, target: str, status: int) -> None:
    """Users, auth and agents endpoints: who gets what, and nobody sees a user outside its scope."""
    url = API + path.replace("{pk}", str(world.objects[target]["users.User"].pk) if target else "")
    body = {"is_active": True} if method == "PATCH" else {}
    response = getattr(world.api[caller], method.lower())(url, body, format="json")
    assert response.status_code == status, _text(response)[:300]
    if status == 404:
        missing = getattr(world.api[caller], method.lower())(url.replace(str(world.objects[target]["users.User"].pk),
                                                                         MISSING), body, format="json")
        assert _text(missing) == _text(response)
    if status != 200 or method != "GET":
        return
    usernames = {row.get("username") for row in _rows(response.json())}
    if path == "auth/me/":
        assert usernames == {caller}
    elif caller == "agent":
        assert usernames == {"client"}
    elif caller == "admin" and not target:
        assert usernames == set(OWNERS)


def _rows(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and "results" in body:
        return list(body["results"])
    return [body] if isinstance(body, dict) else list(body)


# explicit cases: references to other people's objects inside request bodies ------------------------------------------


def _has(template: str, method: str) -> bool:
    return any(e.template == API + template and method in e.methods for e in ENDPOINTS)


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["agent", "client", "stranger"])
def test_bodies_cannot_reach_other_peoples_objects(world: World, caller: str) -> None:
    """Ids of objects the caller may not change, put in a body, change nothing and reveal nothing."""
    api, mine = world.api[caller], world.objects[caller]
    foreign = [o for o in OWNERS if o != caller]
    hidden = [o for o in foreign if o not in VISIBLE[caller]]
    before = world.state()
    checked = 0

    def post(path: str, body: dict[str, Any]) -> Response:
        response: Response = api.post(API + path, body, format="json")
        _assert_only_markers_of(response, VISIBLE[caller], f"{caller} POST {path} {body}")
        return response

    for owner in foreign:
        theirs = world.objects[owner]
        if _has("bots/", "POST"):
            response = post("bots/", {"name": "intruder", "symbol": "BTC/USDT", "mode": "live", "config": _bot_config(),
                                      "exchange_account": theirs["exchange_accounts.ExchangeAccount"].pk})
            assert response.status_code == 400 and "exchange_account" in response.json(), _text(response)[:300]
            checked += 1
        if _has("bots/batch/", "POST"):
            for action in ("stop", "pause", "start"):
                response = post("bots/batch/", {"action": action, "bot_ids": [theirs["bots.Bot"].pk]})
                assert response.status_code >= 400 or response.json().get("ok") == 0, _text(response)[:300]
            checked += 1
        if _has("groups/{pk}/add/", "POST"):
            response = post(f"groups/{mine['bots.BotGroup'].pk}/add/", {"bot_ids": [theirs["bots.Bot"].pk]})
            assert response.status_code == 400, _text(response)[:300]
            checked += 1
        if _has("risk-templates/{pk}/apply/", "POST"):
            response = post(f"risk-templates/{mine['bots.RiskTemplate'].pk}/apply/",
                            {"bot_ids": [theirs["bots.Bot"].pk]})
            assert response.status_code >= 400 or response.json().get("ok") == 0, _text(response)[:300]
            response = post(f"risk-templates/{mine['bots.RiskTemplate'].pk}/apply/",
                            {"group": theirs["bots.BotGroup"].pk})
            assert response.status_code >= 400 or response.json().get("ok") == 0, _text(response)[:300]
            checked += 1
    for owner in hidden:  # a template one cannot see cannot be applied, even to one's own bots
        if _has("bots/batch/", "POST"):
            response = post("bots/batch/", {"action": "apply_risk_template", "bot_ids": [mine["bots.Bot"].pk],
                                            "params": {"template": world.objects[owner]["bots.RiskTemplate"].pk}})
            assert response.status_code == 400, _text(response)[:300]
    if not checked:
        pytest.skip("none of the endpoints taking object ids in bodies exists")
    assert world.state() == before, "a body naming someone else's object changed the database"
    if _has("bots/", "POST"):  # control: the same body with one's own account is accepted
        response = post("bots/", {"name": "mine", "symbol": "BTC/USDT", "mode": "live", "config": _bot_config(),
                                  "exchange_account": mine["exchange_accounts.ExchangeAccount"].pk})
        assert response.status_code == 201, _text(response)[:300]


# filters: a foreign id in a query string answers like a missing one ---------------------------------------------------

FILTER_PARAMS = {"bot": "bots.Bot", "group": "bots.BotGroup", "exchange_account": "exchange_accounts.ExchangeAccount",
                 "account": "exchange_accounts.ExchangeAccount", "owner": "users.User", "user": "users.User",
                 "agent": "users.User", "template": "bots.RiskTemplate"}


# Known, reported findings (an id filter validated against every row: "invalid choice" for a missing id, an empty
# page for someone else's, so the existence of other people's ids shows). They xfail until the app fixes them (a
# plain NumberFilter, or a queryset scoped to the caller); then the case passes again on its own.
KNOWN_FILTER_LEAKS: dict[tuple[str, str], str] = {}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if not e.params and "GET" in e.methods], ids=str)
def test_filters_do_not_reveal_other_peoples_ids(endpoint: Endpoint, world: World) -> None:
    """``?bot=<someone else's bot>`` answers exactly like ``?bot=<missing>`` (for a caller who cannot see it)."""
    known: set[str] = set()
    for caller in ("agent", "client", "stranger"):
        api = world.api[caller]
        for param, label in FILTER_PARAMS.items():
            twin = api.get(endpoint.template, {param: MISSING})
            for owner in OWNERS:
                if owner in VISIBLE[caller]:
                    continue
                response = api.get(endpoint.template, {param: world.objects[owner][label].pk})
                where = f"{caller} GET {endpoint.template}?{param}=<{owner}'s>"
                _assert_only_markers_of(response, VISIBLE[caller], where)
                if (response.status_code, _text(response)) == (twin.status_code, _text(twin)):
                    continue
                reason = KNOWN_FILTER_LEAKS.get((endpoint.template[len(API):], param))
                assert reason, f"{where}: {_text(response)[:200]} vs missing: {_text(twin)[:200]}"
                known.add(reason)
    if known:
        pytest.xfail("; ".join(sorted(known)))
