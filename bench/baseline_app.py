"""The bare baseline: the same framework and server answering a JSON hello from a sync route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
def hello() -> dict[str, bool]:
    return {"ok": True}
