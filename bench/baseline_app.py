"""The bare baseline: Starlette (the framework under FastAPI) answering a JSON hello, nothing else."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_request) -> JSONResponse:  # noqa: ANN001
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/hello", hello)])
