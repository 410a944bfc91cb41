"""Configuración: your own API keys (everyone); the store's data, alert e-mails, users, every key, pricing, invoices
and the negative-stock policy (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from minimarket.accounts.audit import record_audit
from minimarket.accounts.keys import create_api_key, list_api_keys, revoke_api_key
from minimarket.accounts.permissions import ADMIN, READ
from minimarket.accounts.sessions import SessionUser
from minimarket.accounts.users import create_user, disable_user, enable_user, list_users, reset_password
from minimarket.errors import DomainError, InvalidInput
from minimarket.pricing.rules import ROUNDING_RULES
from minimarket.pricing.settings import load_pricing_settings, update_pricing_settings
from minimarket.alerts.notify import read_recipients, write_recipients
from minimarket.invoices.settings import (TAX_CONDITIONS, deposito_can_confirm, set_deposito_can_confirm,
                                          set_tax_condition, tax_condition)
from minimarket.stock.policy import negative_stock_allowed, set_negative_stock_allowed
from minimarket.store_profile import load_store_profile, update_store_profile
from minimarket.store_settings import read_all
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import parse_decimal
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
TAX_CONDITION_LABELS = dict(zip(TAX_CONDITIONS, ("Responsable inscripto", "Monotributo", "Exento"), strict=True))


def _page(request: Request, user: SessionUser, *, status: int = 200, notice: str | None = None,
          error: str | None = None, new_key: str | None = None, kept: bool = False) -> HTMLResponse:
    settings = request.app.state.settings
    is_admin = user.role in ADMIN
    with request.app.state.db.read() as session:
        read_all(session)  # a dozen settings below: one statement
        keys = [k for k in list_api_keys(session, user_id=None if is_admin else user.user_id) if k.revoked_at is None]
        own_keys = [k for k in keys if k.user_id == user.user_id]
        context = {"own_keys": own_keys, "users": [], "all_keys": [], "negative": None, "pricing": None,
                   "profile": load_store_profile(session), "alert_emails": [], "deposito_confirms": False,
                   "smtp_on": False, "tax_condition": None}
        if is_admin:
            context.update(users=list_users(session),
                           all_keys=keys,
                           negative=negative_stock_allowed(session, default=settings.allow_negative_stock),
                           pricing=load_pricing_settings(session), alert_emails=read_recipients(session),
                           deposito_confirms=deposito_can_confirm(session), smtp_on=bool(settings.smtp_host),
                           tax_condition=tax_condition(session))
        # Rendered inside the read: the rows are read as the template walks them.
        response = render(request, "settings.html", user, status_code=status, notice=notice, error=error,
                          new_key=new_key, is_admin=is_admin, roles=("admin", "encargado", "deposito", "lectura"),
                          rounding_rules=ROUNDING_RULES, tax_conditions=TAX_CONDITION_LABELS, **context)
    # As shown by GET (no notice, no new key: those are answers to a POST), kept (web/kept_pages.py).
    return keep(request, response) if kept else response


def _act(request: Request, user: SessionUser, work, notice: str, status: int = 200) -> HTMLResponse:  # noqa: ANN001
    """Run `work(session, ctx)` in one unit of work and show the page with its notice or its error."""
    try:
        with request.app.state.db.write() as session:
            extra = work(session, page_context(request, user))
    except DomainError as exc:
        return _page(request, user, status=exc.status_code, error=exc.message)
    return _page(request, user, status=status, notice=notice, new_key=extra if isinstance(extra, str) else None)


@router.get("/configuracion", response_class=HTMLResponse)
def settings_page(request: Request, user: SessionUser = Depends(page_user(READ))) -> HTMLResponse:
    return _page(request, user, kept=True)


@router.post("/configuracion/claves", response_class=HTMLResponse)
def create_own_key(request: Request, user: SessionUser = Depends(form_user(READ)),
                   nombre: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    """A key of your own, with your role; its secret is shown once."""
    def work(session, ctx):  # noqa: ANN001, ANN202
        _, plaintext = create_api_key(session, ctx, name=nombre, role=user.role, user_id=user.user_id)
        return plaintext

    return _act(request, user, work, "Clave creada. Copiala ahora: no se vuelve a mostrar.", status=201)


@router.post("/configuracion/claves/revocar", response_class=HTMLResponse)
def revoke_key(request: Request, user: SessionUser = Depends(form_user(READ)),
               prefijo: Annotated[str, Form(max_length=16)] = "") -> HTMLResponse:
    """Admins revoke any key; everyone else only their own."""
    owner = None if user.role in ADMIN else user.user_id

    def work(session, ctx):  # noqa: ANN001, ANN202
        if not prefijo:
            raise InvalidInput("prefijo: elegí la clave a revocar")
        revoke_api_key(session, ctx, ref=prefijo, user_id=owner)

    return _act(request, user, work, f"Clave {prefijo} revocada.")


@router.post("/configuracion/usuarios", response_class=HTMLResponse)
def add_user(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
             usuario: Annotated[str, Form(max_length=200)] = "", nombre: Annotated[str, Form(max_length=200)] = "",
             rol: Annotated[str, Form(max_length=20)] = "", contrasena: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        create_user(session, ctx, username=usuario, role=rol, password=contrasena, full_name=nombre)

    return _act(request, user, work, f"Usuario {usuario.strip().lower()} creado.", status=201)


@router.post("/configuracion/usuarios/estado", response_class=HTMLResponse)
def change_user_state(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                      usuario: Annotated[str, Form(max_length=200)] = "",
                      accion: Annotated[str, Form(max_length=20)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        if accion not in ("deshabilitar", "habilitar"):
            raise InvalidInput("accion: usá deshabilitar o habilitar")
        if accion == "deshabilitar" and usuario.strip().lower() == user.username:
            raise InvalidInput("usuario: no podés deshabilitar tu propio usuario")
        (disable_user if accion == "deshabilitar" else enable_user)(session, ctx, username=usuario)

    return _act(request, user, work, f"Usuario {usuario} {'deshabilitado' if accion == 'deshabilitar' else 'habilitado'}.")


@router.post("/configuracion/usuarios/contrasena", response_class=HTMLResponse)
def change_password(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                    usuario: Annotated[str, Form(max_length=200)] = "",
                    contrasena: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        reset_password(session, ctx, username=usuario, password=contrasena)

    return _act(request, user, work, f"Contraseña de {usuario} cambiada; sus sesiones se cerraron.")


@router.post("/configuracion/stock-negativo", response_class=HTMLResponse)
def negative_stock(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                   permitir: Annotated[str, Form(max_length=5)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        if permitir not in ("si", "no"):
            raise InvalidInput("permitir: elegí si o no")
        before = negative_stock_allowed(session, default=request.app.state.settings.allow_negative_stock)
        set_negative_stock_allowed(session, allowed=permitir == "si")
        record_audit(session, ctx, action="settings.negative_stock", entity="ajustes",
                     entity_id="stock.permitir_negativo", before={"allowed": before}, after={"allowed": permitir == "si"})

    return _act(request, user, work, "Política de stock negativo guardada.")


@router.post("/configuracion/precios", response_class=HTMLResponse)
def pricing_settings(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                     margen: Annotated[str, Form(max_length=20)] = "",
                     redondeo: Annotated[str, Form(max_length=30)] = "",
                     inflacion: Annotated[str, Form(max_length=20)] = "") -> HTMLResponse:
    """Default markup, rounding rule and monthly inflation: the same service as PATCH /api/prices/settings."""
    def work(session, ctx):  # noqa: ANN001, ANN202
        changes = {"rounding": redondeo,
                   "default_markup": parse_decimal(margen, "Margen", example="35 o 3,5"),
                   "monthly_inflation": parse_decimal(inflacion, "Inflación", example="35 o 3,5")}
        update_pricing_settings(session, ctx, changes=changes)

    return _act(request, user, work, "Precios: margen, redondeo e inflación guardados.")


@router.post("/configuracion/tienda", response_class=HTMLResponse)
def store_profile(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                  nombre: Annotated[str, Form(max_length=400)] = "", cuit: Annotated[str, Form(max_length=40)] = "",
                  direccion: Annotated[str, Form(max_length=600)] = "",
                  telefono: Annotated[str, Form(max_length=100)] = "",
                  email: Annotated[str, Form(max_length=400)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        update_store_profile(session, ctx, name=nombre, cuit=cuit, address=direccion, phone=telefono, email=email)

    return _act(request, user, work, "Datos de la tienda guardados.")


@router.post("/configuracion/alertas", response_class=HTMLResponse)
def alert_emails(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                 emails: Annotated[str, Form(max_length=4000)] = "") -> HTMLResponse:
    """Who gets the alert e-mails: the same setting as `minimarket alerts emails` (alerts.notify)."""
    def work(session, ctx):  # noqa: ANN001, ANN202
        before = read_recipients(session)
        try:
            write_recipients(session, [a for a in emails.replace(";", ",").replace("\n", ",").split(",") if a.strip()])
        except ValueError as exc:
            raise InvalidInput(f"Correos de alertas: {exc}") from None
        after = read_recipients(session)
        if after != before:
            record_audit(session, ctx, action="settings.alert_emails", entity="ajustes", entity_id="alertas.emails",
                         before={"emails": before}, after={"emails": after})

    return _act(request, user, work, "Correos de alertas guardados.")


@router.post("/configuracion/facturas", response_class=HTMLResponse)
def invoice_settings(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                     deposito: Annotated[str, Form(max_length=5)] = "") -> HTMLResponse:
    def work(session, ctx):  # noqa: ANN001, ANN202
        if deposito not in ("si", "no"):
            raise InvalidInput("deposito: elegí si o no")
        set_deposito_can_confirm(session, ctx, allowed=deposito == "si")

    return _act(request, user, work, "Facturas: quién confirma, guardado.")


@router.post("/configuracion/iva", response_class=HTMLResponse)
def tax_condition_setting(request: Request, user: SessionUser = Depends(form_user(ADMIN)),
                          condicion: Annotated[str, Form(max_length=30)] = "") -> HTMLResponse:
    """The store's standing before IVA (what an A invoice's IVA costs it): the same setting as
    PATCH /api/invoices/settings {"tax_condition": …}, audited there."""
    def work(session, ctx):  # noqa: ANN001, ANN202
        try:
            set_tax_condition(session, ctx, condition=condicion)
        except InvalidInput:
            *others, last = TAX_CONDITION_LABELS.values()
            raise InvalidInput(f"Condición frente al IVA: elegí {', '.join(others)} o {last}") from None

    return _act(request, user, work, "Condición frente al IVA guardada.")
