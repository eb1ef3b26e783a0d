"""A request id on every request: the client's ``X-Request-ID`` when it is a plain token (a proxy's or a
core system's, so their logs and ours meet), else a new one; echoed in the answer, on every log line of
the request (logs.py) and carried into the jobs it queues (queues.enqueue puts it in the job's meta)."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

import logs

HEADER = b"x-request-id"


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        request_id = given if logs.REQUEST_ID.match(given) else secrets.token_hex(8)
        # Set in this task's context without a reset: uvicorn writes its access line from inside ``send``,
        # still in this context, so that line carries the id too.
        logs.set_request_id(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)
