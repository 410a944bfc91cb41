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
