"""Security headers on every answer: what a browser may load, run and frame on our pages, and what it may
keep or pass on about them.

The pages load their scripts and styles from the service's own /static/ only, none inline, so the policy
refuses every inline script and style: markup someone slipped into a page (a name, a field value) cannot
run code, and no page loads anything from elsewhere.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settings import Settings

# img-src blob: for the images the pages fetch with the API key and show from blob URLs; data: for
# swagger-ui's icons. connect-src (fetch) falls back to default-src 'self'.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
)
# Pages without personal data, which a browser may keep; every other page is not stored anywhere.
CACHEABLE_PAGES = frozenset({"/docs"})
# The pages a core system may show in a frame beside its own screen (IMAGING_FRAME_ANCESTORS): the viewer,
# and the sign-in it leads to. No other page is framed by anyone: key-entry, admin and operator pages
# have buttons that a framing site could trick a person into pressing (clickjacking).
EMBEDDABLE_PAGES = frozenset({"/viewer", "/login"})


def frame_options(frame_ancestors: str) -> str | None:
    """Return the X-Frame-Options that says what frame-ancestors says, for browsers that know only the
    older header, or None when it cannot (it names no other site; frame-ancestors then rules alone)."""
    return {"'none'": "DENY", "'self'": "SAMEORIGIN"}.get(frame_ancestors)


def page_headers(settings: Settings, path: str) -> dict[str, str]:
    """Return the headers an HTML page at ``path`` carries besides those every answer carries."""
    ancestors = settings.frame_ancestors if path in EMBEDDABLE_PAGES else "'none'"
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY.format(frame_ancestors=ancestors)}
    if (framing := frame_options(ancestors)) is not None:
        headers["X-Frame-Options"] = framing
    if path not in CACHEABLE_PAGES:
        headers["Cache-Control"] = "no-store"
    return headers


class SecurityHeaders:
    """Add to every answer ``X-Content-Type-Options: nosniff`` (a file is only what its type says) and
    ``Referrer-Policy: no-referrer`` (the customer's page has its token in the address), and to HTML
    pages the Content-Security-Policy, the framing rule and, for pages with personal data, no-store."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                if headers.get("content-type", "").startswith("text/html"):
                    headers.update(page_headers(self.settings, scope["path"]))
            await send(message)

        await self.app(scope, receive, send_with_headers)
