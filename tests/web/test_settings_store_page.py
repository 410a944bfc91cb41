"""Configuración: the store's data and the alert e-mail addresses (the ones alerts.notify reads), admin only."""

from __future__ import annotations

from minimarket.alerts.notify import read_recipients
from minimarket.store_profile import load_store_profile
from tests.web.helpers import alerts, sign_in


def test_store_data_saved_checked_and_shown(client, app):
    csrf = sign_in(app, client, "admin")
    first = client.get("/configuracion").text
    assert "Para empezar" in first and "Completá los datos de la tienda" in first
    saved = client.post("/configuracion/tienda", data={
        "csrf": csrf, "nombre": "  Minimercado   Don José ", "cuit": "20123456786", "direccion": "Av. Corrientes 1234",
        "telefono": "11 4567-8901", "email": "Compras@DonJose.com.ar"})
    assert saved.status_code == 200 and "Datos de la tienda guardados" in saved.text
    assert 'value="20-12345678-6"' in saved.text and "Para empezar" not in saved.text
    with app.state.db.read() as session:
        profile = load_store_profile(session)
    assert (profile.name, profile.cuit, profile.email) == ("Minimercado Don José", "20123456786",
                                                           "compras@donjose.com.ar")
    for fields, message in (({"cuit": "20-12345678-7"}, "CUIT:"), ({"nombre": "Don\u202eJosé"}, "Nombre:"),
                            ({"email": "compras@"}, "E-mail:"), ({"nombre": "x" * 201}, "Nombre:")):
        page = client.post("/configuracion/tienda", data={"csrf": csrf, "nombre": "Otro", **fields})
        assert page.status_code == 422 and message in alerts(page.text)[0], (fields, alerts(page.text))
    with app.state.db.read() as session:
        assert load_store_profile(session) == profile  # a refused form changes nothing
    client.cookies.clear()
    sign_in(app, client, "lectura")
    reader = client.get("/configuracion").text
    assert "Minimercado Don José" in reader and "20-12345678-6" in reader and "/configuracion/tienda" not in reader


def test_alert_emails_are_the_ones_the_notifier_reads(client, app):
    csrf = sign_in(app, client, "admin")
    saved = client.post("/configuracion/alertas", data={
        "csrf": csrf, "emails": "encargado@minimercado.com.ar; Duena@Minimercado.com.ar"})
    assert saved.status_code == 200 and "Correos de alertas guardados" in saved.text
    with app.state.db.read() as session:
        assert read_recipients(session) == ["encargado@minimercado.com.ar", "Duena@Minimercado.com.ar"]
    assert "SMTP_HOST" in saved.text  # the page says nothing is sent until the server has SMTP
    refused = client.post("/configuracion/alertas", data={"csrf": csrf, "emails": "bien@tienda.com.ar, mal@"})
    assert refused.status_code == 422 and "Correos de alertas: 'mal@'" in alerts(refused.text)[0]
    with app.state.db.read() as session:
        assert len(read_recipients(session)) == 2
    cleared = client.post("/configuracion/alertas", data={"csrf": csrf, "emails": ""})
    assert cleared.status_code == 200
    with app.state.db.read() as session:
        assert read_recipients(session) == []


def test_tax_condition_is_the_one_invoices_cost_by_and_is_audited(client, app, admin):
    from sqlalchemy import select

    from minimarket import store_settings
    from minimarket.accounts.models import AuditEntry

    csrf = sign_in(app, client, "admin")
    page = client.get("/configuracion").text
    assert '<option value="responsable_inscripto" selected>Responsable inscripto</option>' in page  # the default
    saved = client.post("/configuracion/iva", data={"csrf": csrf, "condicion": "monotributo"})
    assert saved.status_code == 200 and "Condición frente al IVA guardada" in saved.text
    assert '<option value="monotributo" selected>Monotributo</option>' in saved.text
    assert client.get("/api/invoices/settings", headers=admin).json()["tax_condition"] == "monotributo"
    with app.state.db.read() as session:
        audit = [(a.actor, a.before, a.after) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == store_settings.TAX_CONDITION))]
    assert audit == [
        ("usuario:u-admin", {"tax_condition": "responsable_inscripto"}, {"tax_condition": "monotributo"})]
    for condicion in ("", "consumidor_final", "Monotributo"):
        refused = client.post("/configuracion/iva", data={"csrf": csrf, "condicion": condicion})
        assert refused.status_code == 422, condicion
        assert alerts(refused.text) == ["Condición frente al IVA: elegí Responsable inscripto, Monotributo o Exento"]
    forged = client.post("/configuracion/iva", data={"csrf": "otro", "condicion": "exento"})
    assert forged.status_code == 403
    assert client.get("/api/invoices/settings", headers=admin).json()["tax_condition"] == "monotributo"
