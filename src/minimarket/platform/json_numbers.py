"""JSON bodies whose numbers keep their literal text, so decimal fields can refuse `1e3` or 20-digit floats.

Starlette parses a JSON body with `json.loads`, which turns `1e3` into the float 1000.0 and
`0.1000000000000000055511` into 0.1: a decimal field can no longer tell what the client
wrote. Routers built with `route_class=PlainNumbersRoute` parse every JSON number with a
fraction or exponent into a `JsonNumber` (a Decimal that remembers its literal);
`minimarket.plain_input.plain_decimal` accepts it only when the literal is plain decimal
text. Fields of other types see a Decimal where they saw a float and validate it the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class JsonNumber(Decimal):
    """A JSON number with a fraction or an exponent, with the text the client sent."""

    literal: str

    def __new__(cls, literal: str) -> JsonNumber:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def parse_plain_json(body: bytes) -> Any:  # noqa: ANN401
    """A JSON body whose numbers with a fraction or exponent are JsonNumbers (ValueError when it is no JSON)."""
    return json.loads(body, parse_float=JsonNumber)


class PlainNumbersRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_plain_json(await self.body())
        return self._json


class PlainNumbersRoute(APIRoute):
    """An APIRoute whose JSON body keeps the literal text of its numbers (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def plain_numbers_handler(request: Request) -> Response:
            return await handler(PlainNumbersRequest(request.scope, request.receive))

        return plain_numbers_handler
