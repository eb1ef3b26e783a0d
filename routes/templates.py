"""The pages' HTML: Jinja2 templates under web/, autoescaped, with an error for a name the page uses
and the route did not give (StrictUndefined), so a forgotten value fails a test instead of showing blank."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

WEB = Path(__file__).resolve().parent.parent / "web"
ENVIRONMENT = Environment(
    loader=FileSystemLoader(WEB),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(name: str, **context: object) -> str:
    """Return the page web/<name> rendered with the values given, each escaped unless marked safe."""
    return ENVIRONMENT.get_template(name).render(**context)
