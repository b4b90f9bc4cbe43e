"""A constant endpoint on one HTTP stack, for measuring that stack's ceiling (benchmarks/serve.py).

    python benchmarks/stacks.py --app fastapi|starlette|asgi --http httptools|h11 --loop uvloop|asyncio --port P

GET /health answers {"status":"ok"} and does nothing else (a POST first reads its body):
requests/s against it is the most any app on that stack can answer. `fastapi` is a FastAPI route
(the framework's routing, request and response objects and its default middleware), `starlette`
the same route on bare Starlette, `asgi` a plain ASGI callable (what the serving app's ServingApp
does for /predict and /health). Run it with the Python of the environment whose versions you want
to measure.
"""

from __future__ import annotations

import argparse
import sys

BODY = b'{"status":"ok"}'


def fastapi_app():
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.get("/health")
    async def health() -> Response:
        return Response(BODY, media_type="application/json")

    return app


def starlette_app():
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def health(request) -> Response:
        return Response(BODY, media_type="application/json")

    return Starlette(routes=[Route("/health", health)])


def asgi_app():
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

    async def app(scope, receive, send):
        if scope["method"] == "POST":  # read the body, as an endpoint taking a request body must
            while (await receive()).get("more_body"):
                pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    return app


APPS = {"fastapi": fastapi_app, "starlette": starlette_app, "asgi": asgi_app}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=sorted(APPS), required=True)
    parser.add_argument("--http", choices=["httptools", "h11"], default="httptools")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvicorn

    uvicorn.run(APPS[args.app](), host="127.0.0.1", port=args.port, http=args.http, loop=args.loop,
                log_level="warning", access_log=False, lifespan="off" if args.app == "asgi" else "on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
