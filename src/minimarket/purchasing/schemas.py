"""API shapes of purchasing: forecast runs and one product's forecast."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ForecastRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(180, ge=28, le=3 * 365, description="Días de historia (por defecto 180)")


class ForecastRunOut(BaseModel):
    computed_on: str
    products: int
    history_days: int
    methods: dict[str, int] = Field(description="Cuántos productos eligieron cada método")
    seconds: float


class ForecastDay(BaseModel):
    date: str
    units: float


class ForecastOut(BaseModel):
    sku: str
    name: str
    computed_on: str
    method: str
    method_label: str
    daily_rate: float
    weekday_profile: list[float] = Field(description="7 factores, lunes primero, promedio 1")
    backtest_mae: float | None = Field(description="Error medio del backtest, unidades por día")
    backtest_wape: float | None
    history_days: int
    observed_days: int = Field(description="Días de la historia con stock (los quiebres no cuentan)")
    how_chosen: str
    days: list[ForecastDay]
