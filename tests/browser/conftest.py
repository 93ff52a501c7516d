"""Browser tests: Debian's Chromium, driven by Playwright, against the service on a real
socket, with nothing allowed off the machine.

Put browser tests in this folder (``tests/browser/``); the fixtures live here. Chromium is
``package``-scoped (launched once for all browser tests) and the live servers
``module``-scoped; both are torn down as soon as the last browser test using them has run,
so that neither a server thread nor Playwright lives on into the rest of the suite
(Playwright's sync API marks its event loop as running in the main thread between calls,
which would break ``asyncio.run`` and anyio elsewhere). Do not use ``TestClient`` or
``asyncio`` in a browser test: talk to the live server (``live_server.request``) instead.

Fixtures
--------
``live_server`` -> ``LiveServer`` (module scope, once per module and backend: every test
that uses it runs on SQLite and, when ``TRIAGE_TEST_POSTGRES_URL`` is set, on PostgreSQL)
    The app (``create_app`` with ``Settings(environment="test", write_rate_per_minute=0)``)
    served by uvicorn in a thread on a free port of 127.0.0.1, on a fresh database
    migrated to head (a SQLite file, or a PostgreSQL database created here and dropped at
    teardown). The database is shared by the module's browser tests of that backend: never
    assume it is empty. One per module, so that what one module seeds (the report
    screen's year of incidents, say) never fills another module's queue; a new one costs
    a copy of the template database and a thread.

    - ``base_url``: ``"http://127.0.0.1:PORT"`` (no trailing slash), also the only
      origin a ``page`` may reach. ``backend``: ``"sqlite"`` or ``"postgres"``.
      ``database_url``, ``settings``, ``app``.
    - ``keys``: ``{name: secret}`` for one API key per role, the demo keys of
      ``triage keys demo`` (app/auth/cli.py ``DEMO_KEYS``): ``"submitter"``
      (source system ``force-a-records``), ``"triage"`` (area E09000018),
      ``"agency_csc"`` (E09000018), ``"agency_school"`` (E09000018, school URN 100123,
      the school of the example incident's child), ``"auditor"``, ``"admin"``.
    - ``headers(name, purpose="triage")``: ``Authorization`` and ``X-Purpose`` for that key.
    - ``request(method, path, *, key=None, purpose="triage", **httpx_kwargs)``: an
      ``httpx.Response`` from the live server (``key`` names one of ``keys``).
    - ``seed_incident(body=None, *, unique=False)``: posts an incident as the submitter
      (default: tests/data/incident.example.json) and returns the response JSON
      (``IntakeResponse``: ``incident_id``, the assessment, the flags...). The same body
      again is a replay of the same incident (200); ``unique=True`` gives the body a
      fresh ``source.reference`` so that every call makes a new incident (its persons
      link to the earlier ones, as they would in service).

``browser`` -> ``playwright.sync_api.Browser`` (package scope)
    Headless ``/usr/bin/chromium`` (Debian's package; Playwright never downloads one),
    launched without background networking and with a dead proxy for anything not on
    loopback. Absent ``/usr/bin/chromium``, browser tests are skipped, and fail instead
    when ``TRIAGE_REQUIRE_BROWSER`` is set (CI sets it).

``page`` -> ``playwright.sync_api.Page`` (per test, on ``live_server``)
    A page in a fresh context (no cookies or storage shared between tests) whose
    ``base_url`` is the live server: ``page.goto("/docs")``. Every request to another
    origin (a CDN, a font, an analytics beacon, even another local port) is aborted and
    recorded in ``blocked_requests``; the test fails at teardown if any was, naming only
    the origins. A test that provokes one on purpose checks and then clears the list.

``blocked_requests`` -> ``list[str]`` (per test)
    The URLs the ``page`` tried to reach off the live server, in order.

``ONE_BACKEND`` (a mark)
    ``pytestmark = ONE_BACKEND`` (or ``@ONE_BACKEND`` on a test): the test runs on the
    SQLite live server only. Only for pages that never read or write the database (the
    API docs, a page of the test's own): everything else runs on both backends.

``axe`` -> ``Axe`` (callable)
    ``axe(page, *, include=None, exclude=None, disable=())`` runs axe-core (4.12, from
    axe-playwright-python) on the page as it is now, with the WCAG 2.2 AA rule set
    (tags wcag2a, wcag2aa, wcag21a, wcag21aa, wcag22aa), and fails the test if any
    violation has impact ``serious`` or ``critical``, printing each rule's id, impact,
    help, help URL and number of elements (never the page's content). ``include`` and
    ``exclude`` are lists of CSS selectors limiting where it looks; ``disable`` names
    rules to skip (say why in the test). Returns all violations (axe's dicts, minor and
    moderate ones included) for tests that want more.

Example::

    def test_queue_screen(live_server: LiveServer, page: Page, axe: Axe) -> None:
        live_server.seed_incident()
        page.goto("/ui/queue")
        page.get_by_label("API key").fill(live_server.keys["triage"])
        expect(page.get_by_role("table")).to_be_visible()
        axe(page)
"""

from __future__ import annotations

import copy
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe as _AxeRunner
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from app.auth.cli import DEMO_KEYS
from app.auth.keys import create_key
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import TempDatabase, example_incident

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces: whatever the browser itself sends off loopback goes to a port where
    # nothing listens (Chromium never proxies loopback). Pages are held by ``page``'s route.
    "--proxy-server=http://127.0.0.1:9",
]
# Generous, for a loaded CI machine: a wait ends as soon as its condition holds.
TIMEOUT_MS = 20_000
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = ("serious", "critical")


# Indirect parametrisation of the session's ``backend`` fixture: these tests get the
# SQLite live server only (see the module's docstring).
ONE_BACKEND = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _browser_required() -> bool:
    return os.environ.get("TRIAGE_REQUIRE_BROWSER", "") not in ("", "0")


# --------------------------------------------------------------------------- live server


@dataclass
class LiveServer:
    base_url: str
    backend: str
    database_url: str
    settings: Settings
    app: FastAPI
    keys: dict[str, str]
    _client: httpx.Client = field(repr=False)

    def headers(self, name: str, purpose: str = "triage") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}", "X-Purpose": purpose}

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        purpose: str = "triage",
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if key is not None:
            headers = {**self.headers(key, purpose), **headers}
        return self._client.request(method, path, headers=headers, **kwargs)

    def seed_incident(
        self, body: dict[str, Any] | None = None, *, unique: bool = False
    ) -> dict[str, Any]:
        incident = copy.deepcopy(body) if body is not None else example_incident()
        if unique:
            incident["source"]["reference"] = f"BROWSER-{uuid.uuid4().hex[:12]}"
        response = self.request("POST", "/v1/incidents", key="submitter", json=incident)
        assert response.status_code in (200, 201), response.status_code
        result: dict[str, Any] = response.json()
        return result


def _key_name(spec: dict[str, Any]) -> str:
    return f"agency_{spec['agency']}" if spec["role"] == "agency" else str(spec["role"])


class _ServerThread:
    """uvicorn serving ``app`` on an already bound socket, in a thread of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.socket]},
            name=f"live-server-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


@pytest.fixture(scope="module")
def live_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    temp = TempDatabase(backend, tmp_path_factory.mktemp(f"browser-{backend}"), "triage_browser")
    database = Database(temp.url)
    keys: dict[str, str] = {}
    with database.session() as session:
        for spec in DEMO_KEYS:
            keys[_key_name(spec)] = create_key(session, label="browser tests", **spec).secret
        session.commit()
    settings = Settings(
        environment="test", database_url=temp.url, log_level="WARNING", write_rate_per_minute=0
    )
    app = create_app(settings, database)
    server = _ServerThread(app)
    server.start()
    base_url = f"http://127.0.0.1:{server.port}"
    client = httpx.Client(base_url=base_url, timeout=30)
    try:
        yield LiveServer(base_url, backend, temp.url, settings, app, keys, client)
    finally:
        client.close()
        server.stop()
        database.dispose()
        temp.drop()


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"browser tests need {CHROMIUM}: apt-get install chromium"
        if _browser_required():
            pytest.fail(f"TRIAGE_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def blocked_requests() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, blocked_requests: list[str]) -> Iterator[Page]:
    origin = live_server.base_url

    def hold_on_machine(route: Route) -> None:
        url = route.request.url
        if url == origin or url.startswith(f"{origin}/"):
            route.fallback()
        else:
            blocked_requests.append(url)
            route.abort("blockedbyclient")

    context = browser.new_context(base_url=origin, service_workers="block")
    context.route("**/*", hold_on_machine)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
    if blocked_requests:
        origins = sorted({"/".join(url.split("/")[:3]) for url in blocked_requests})
        pytest.fail(f"the page tried to reach {len(blocked_requests)} URL(s) at {origins}")


# --------------------------------------------------------------------------- axe


class Axe:
    """axe-core on a page, WCAG 2.2 AA: no serious or critical violation allowed."""

    def __init__(self) -> None:
        self._script: str = _AxeRunner().axe_script

    def __call__(
        self,
        page: Page,
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        disable: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        context: dict[str, Any] | None = None
        if include or exclude:
            context = {}
            if include:
                context["include"] = [[selector] for selector in include]
            if exclude:
                context["exclude"] = [[selector] for selector in exclude]
        options: dict[str, Any] = {
            "runOnly": {"type": "tag", "values": WCAG_22_AA},
            "resultTypes": ["violations"],
        }
        if disable:
            options["rules"] = {rule: {"enabled": False} for rule in disable}
        # Measure the page as styled: an element is "visible" to Playwright before the
        # stylesheet has loaded, and on a busy machine axe then measured unstyled links
        # (a flaky target-size failure). "load" waits for the stylesheets.
        page.wait_for_load_state("load")
        # The library's own run() writes the context into a script with repr(): pass both
        # as arguments instead.
        page.evaluate(self._script)
        result = page.evaluate(
            "([context, options]) => axe.run(context || document, options)", [context, options]
        )
        violations: list[dict[str, Any]] = result["violations"]
        failing = [v for v in violations if v.get("impact") in FAILING_IMPACTS]
        if failing:
            # Each failing element by its selector (never its text: test pages hold
            # invented personal data, and a selector is what a fix needs).
            lines = [
                f"{v['id']} ({v['impact']}, {len(v['nodes'])} element(s)): {v['help']} "
                f"<{v['helpUrl']}>\n  "
                + "\n  ".join(" ".join(map(str, n.get("target", []))) for n in v["nodes"][:8])
                for v in failing
            ]
            pytest.fail("axe-core, WCAG 2.2 AA:\n" + "\n".join(lines), pytrace=False)
        return violations


@pytest.fixture(scope="package")
def axe() -> Axe:
    return Axe()
