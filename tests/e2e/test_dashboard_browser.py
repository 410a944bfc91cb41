"""The dashboard in a real browser: Debian's Chromium driven by Playwright against a live `minimarket serve`.

Nothing downloads a browser (`playwright install` is never run): Chromium comes from apt
(`.ci/run` installs it). Screenshots of every page at 360 px and 1280 px go to
test-artifacts/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.helpers import skip_outside_ci
from tests.e2e.servers import Server, StartServer, cli_command, run_cli

pytestmark = pytest.mark.timeout(300)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "clave-del-navegador"
STORE_LOCALE = {"locale": "es-AR", "timezone_id": "America/Argentina/Buenos_Aires"}  # the browser of a store in Argentina


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        skip_outside_ci(f"Chromium de Debian no está en {CHROMIUM} (apt-get install -y chromium)")


@pytest.fixture
def store(start_server: StartServer, sqlite_database: str, tmp_path: Path) -> Server:
    """A demo store (small) with an `admin` and a `deposito` user, served by a live all-in-one."""
    need_chromium()
    env = {k: v for k, v in os.environ.items()}
    env["DATABASE_URL"] = sqlite_database
    result = run_cli(["demo", "--products", "80", "--days", "40"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert run_cli(["forecast", "run"], env=env, cwd=tmp_path).returncode == 0  # Pronóstico has something to show
    for name, role in (("admin", "admin"), ("pepe", "deposito")):
        made = subprocess.run(cli_command() + ["user", "create", "--username", name, "--role", role,
                                               "--password-stdin"], input=PASSWORD + "\n", env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert made.returncode == 0, made.stderr
    return start_server(sqlite_database)


@pytest.fixture
def browser() -> Iterator:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def category_prices(database_url: str, category: str | None = None) -> tuple[str, dict[str, float]]:
    """A category (the first by name unless given) and its active products' shelf prices by SKU."""
    with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
        category = category or conn.execute("SELECT nombre FROM categorias ORDER BY nombre LIMIT 1").fetchone()[0]
        rows = conn.execute("SELECT p.sku, p.precio FROM productos p JOIN categorias c ON c.id = p.categoria_id "
                            "WHERE c.nombre = ? AND p.activo", (category,)).fetchall()
    return category, dict(rows)


def a_product_with_barcode(database_url: str) -> tuple[str, str]:
    path = database_url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sku, codigo_barras FROM productos WHERE codigo_barras IS NOT NULL AND activo "
                            "ORDER BY sku LIMIT 1").fetchone()


class Watch:
    """Every request the pages make, and every console complaint (CSP violations show up there)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.foreign: list[str] = []
        self.console: list[str] = []

    def attach(self, page) -> None:  # noqa: ANN001
        page.on("request", lambda r: None if r.url.startswith(self.base_url) or r.url.startswith("data:")
                else self.foreign.append(r.url))
        page.on("console", lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None)


def log_in(page, base_url: str, username: str) -> None:  # noqa: ANN001
    page.goto(base_url + "/")
    assert "/ingresar" in page.url
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Ingresar").click()
    page.wait_for_url(base_url + "/")


def test_the_dashboard_in_a_browser(store: Server, browser, tmp_path: Path) -> None:
    """One demo store for both parts: a second demo, users and server would only add CI time."""
    owner_and_clerk(store, browser, tmp_path)
    every_page_fits_the_screen_and_is_photographed(store, browser)


def owner_and_clerk(store: Server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    sku, barcode = a_product_with_barcode(store.database_url)
    watch = Watch(store.base_url)
    owner = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, **STORE_LOCALE)
    clerk = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                 **STORE_LOCALE)
    inicio, phone = owner.new_page(), clerk.new_page()
    watch.attach(inicio)
    watch.attach(phone)

    log_in(inicio, store.base_url, "admin")
    moved = inicio.locator('[data-kpi="movements_today"]')
    before = moved.inner_text()
    assert inicio.locator('[data-kpi="stock_value_cost"]').inner_text().startswith("$ ")

    # The clerk scans a barcode into Buscar: digits then Enter open the product.
    log_in(phone, store.base_url, "pepe")
    phone.goto(store.base_url + "/inventario")
    search = phone.get_by_label("Buscar")
    search.fill(barcode)
    search.press("Enter")
    phone.wait_for_url(f"{store.base_url}/inventario/{sku}")
    expect(phone.locator("h1")).not_to_have_text("Inventario")

    # Goods in from the form; a double tap records once.
    phone.get_by_role("link", name="Registrar movimiento").click()
    phone.get_by_label("Cantidad").fill("7")
    phone.get_by_label("Entrada").check()
    phone.get_by_role("button", name="Registrar").dblclick()
    expect(phone.locator("[data-done]")).to_contain_text("Entrada de 7")

    # Inicio moves without a reload (server-sent events).
    expect(moved).not_to_have_text(before, timeout=20_000)
    assert int(moved.inner_text().replace(".", "")) == int(before.replace(".", "")) + 1

    # The owner exports the inventory as XLSX with the session, and it opens.
    inicio.goto(store.base_url + "/reportes")
    with inicio.expect_download() as download:
        inicio.locator("section", has_text="Inventario").get_by_role("button", name="Excel").click()
    saved = tmp_path / "inventario.xlsx"
    download.value.save_as(saved)
    rows = list(load_workbook(io.BytesIO(saved.read_bytes())).active.iter_rows(values_only=True))
    assert rows[0][0] == "SKU" and any(r[0] == sku for r in rows[1:])

    # The owner raises a category by 10 %, sees each old → new price, applies it, and undoes it.
    category, before = category_prices(store.database_url)
    inicio.goto(store.base_url + "/precios")
    inicio.get_by_label("Categoría").select_option(category)
    inicio.get_by_label("Recalcular desde el costo").check()  # takes no percentage: the field steps aside
    expect(inicio.get_by_label("Porcentaje (negativo para bajar)")).to_be_disabled()
    inicio.get_by_label("Precio ± %").check()
    inicio.get_by_label("Porcentaje (negativo para bajar)").fill("10")
    inicio.get_by_role("button", name="Ver vista previa").click()
    expect(inicio.locator("[data-preview-count]")).to_contain_text(f"{len(before)} producto(s) cambian")
    assert inicio.locator("[data-new-price]").count() == min(len(before), 50)
    inicio.get_by_role("button", name=f"Aplicar a {len(before)} producto(s)").click()
    expect(inicio.locator("[data-notice]")).to_contain_text("aplicado")
    _, raised = category_prices(store.database_url, category)
    assert all(raised[s] >= before[s] * 1.1 - 0.01 for s in before) and raised != before
    inicio.get_by_role("button", name="Deshacer lote").first.click()
    expect(inicio.locator("[data-notice]")).to_contain_text("deshecho")
    assert category_prices(store.database_url, category)[1] == before

    assert watch.foreign == [], f"requests to other origins: {watch.foreign}"
    assert not [m for m in watch.console if "Content Security Policy" in m], watch.console
    owner.close()
    clerk.close()


PAGES = {
    "ingresar": "/ingresar", "inicio": "/", "inventario": "/inventario", "inventario-bajo": "/inventario?estado=bajo",
    "producto": "/inventario/{sku}", "movimientos": "/movimientos", "movimiento-nuevo": "/movimientos/nuevo",
    "recuento": "/recuento", "reportes": "/reportes", "configuracion": "/configuracion",
    "precios": "/precios", "precios-vista-previa": "/precios/vista-previa?todos=si&porcentaje=5",
    "precios-atrasados": "/precios/atrasados", "alertas": "/alertas",
    "proveedores": "/proveedores", "proveedor": "/proveedores/1", "proveedor-nuevo": "/proveedores/nuevo",
    "facturas": "/facturas", "factura": "/facturas/1", "factura-nueva": "/facturas/nueva",
    "pedidos": "/pedidos", "pedido-nuevo": "/pedidos/nuevo?proveedor=1", "pedido": "/pedidos/{order}",
    "pronostico": "/pronostico?producto={sku}&evaluar=1",
}


def an_order_received_in_part(page, base_url: str, sku: str) -> int:  # noqa: ANN001
    """Through /api with the page's session: 12 of `sku` ordered to supplier 1, sent, 5 received."""
    csrf = {"X-CSRF-Token": page.locator('meta[name="csrf-token"]').get_attribute("content")}
    made = page.request.post(base_url + "/api/purchase-orders", headers=csrf, data={
        "supplier": "1", "lines": [{"sku": sku, "quantity": 12, "pack_size": 1}], "notes": "Entregar a la mañana"})
    assert made.status == 201, made.text()
    order = made.json()["id"]
    assert page.request.post(f"{base_url}/api/purchase-orders/{order}/send", headers=csrf).status == 200
    received = page.request.post(f"{base_url}/api/purchase-orders/{order}/receive", headers=csrf,
                                 data={"lines": [{"sku": sku, "quantity": 5}]})
    assert received.status == 200, received.text()
    return order


def every_page_fits_the_screen_and_is_photographed(store: Server, browser) -> None:  # noqa: ANN001
    """Both widths, every page: no horizontal scroll, a label on every input, a screenshot for a person to look at."""
    sku, _ = a_product_with_barcode(store.database_url)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watch, too_wide, order = Watch(store.base_url), [], None
    for width in (360, 1280):
        context = browser.new_context(viewport={"width": width, "height": 800}, **STORE_LOCALE)
        page = context.new_page()
        watch.attach(page)
        page.goto(store.base_url + "/ingresar")
        page.screenshot(path=str(ARTIFACTS / f"ingresar-{width}.png"), full_page=True)
        log_in(page, store.base_url, "admin")
        order = order or an_order_received_in_part(page, store.base_url, sku)
        for name, path in PAGES.items():
            if name == "ingresar":
                continue
            page.goto(store.base_url + path.format(sku=sku, order=order))
            page.wait_for_load_state("load")
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                too_wide.append(f"{name}: {scroll} px de ancho en una pantalla de {inner} px")
            unlabeled = page.evaluate("""[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter(el => !(el.labels && el.labels.length) && !el.closest('label')).map(el => el.name)""")
            assert unlabeled == [], f"{name}: inputs without a label: {unlabeled}"
        context.close()
    assert not too_wide, "\n".join(too_wide)
    assert watch.foreign == [], watch.foreign
    assert not [m for m in watch.console if "Content Security Policy" in m], watch.console
