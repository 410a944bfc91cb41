"""Demand forecast, reorder suggestions and purchase orders."""
