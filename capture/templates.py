"""Templates: one TOML file per form or card type and version, in capture/templates/."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

TEMPLATE_DIR = Path(__file__).with_name("templates")
MM_PER_INCH = 25.4


class FieldKind(StrEnum):
    name = "name"
    id_number = "id_number"
    date = "date"
    phone = "phone"
    amount = "amount"
    integer = "integer"
    sex = "sex"
    text = "text"
    code = "code"
    address = "address"
    choice = "choice"
    card_number = "card_number"  # a bank card or account number: 16-19 digits with its Luhn check digit


@dataclass(frozen=True)
class Box:
    """A rectangle in millimetres from the top-left corner."""

    x: float
    y: float
    w: float
    h: float

    def corners(self) -> list[tuple[float, float]]:
        return [
            (self.x, self.y),
            (self.x + self.w, self.y),
            (self.x + self.w, self.y + self.h),
            (self.x, self.y + self.h),
        ]

    def grow(self, margin: float) -> Box:
        return Box(self.x - margin, self.y - margin, self.w + 2 * margin, self.h + 2 * margin)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    box: Box
    label: str = ""
    lang: str = "chi_sim"
    psm: int = 7
    charset: str = ""
    double_entry: bool = False
    page: int = 1
    optional: bool = False  # may be left empty on the form: a keyer may answer "blank"
    # A choice field's tick boxes: each option's label and its box (mm); the field's box holds them all.
    options: tuple[tuple[str, Box], ...] = ()


@dataclass(frozen=True)
class RegionSpec:
    name: str
    box: Box
    label: str = ""
    page: int = 1


@dataclass(frozen=True)
class Template:
    type: str
    version: str
    width_mm: float
    height_mm: float
    fields: tuple[FieldSpec, ...]
    regions: tuple[RegionSpec, ...] = ()
    title: str = ""
    pages: int = 1
    marks: tuple[tuple[float, float], ...] = ()
    mark_size_mm: float = 6.0
    qr: Box | None = None
    headings: tuple[tuple[str, float, float], ...] = ()
    labels: tuple[tuple[str, float, float], ...] = field(default=())
    title_y_mm: float = 34.0  # the title's baseline, from the top of the page

    @property
    def key(self) -> str:
        return f"{self.type}/{self.version}"

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


def _box(values: list[float]) -> Box:
    return Box(*(float(v) for v in values))


def load_template(path: Path) -> Template:
    """Return the template in a TOML file; raise ValueError naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        fields = tuple(
            FieldSpec(
                name=f["name"],
                kind=FieldKind(f["kind"]),
                box=_box(f["box"]),
                label=f.get("label", ""),
                lang=f.get("lang", "chi_sim"),
                psm=int(f.get("psm", 7)),
                charset=f.get("charset", ""),
                double_entry=bool(f.get("double_entry", False)),
                page=int(f.get("page", 1)),
                optional=bool(f.get("optional", False)),
                options=tuple(
                    (
                        str(label),
                        Box(float(x), float(y), float(f.get("tick_mm", 4.0)), float(f.get("tick_mm", 4.0))),
                    )
                    for label, x, y in f.get("options", [])
                ),
            )
            for f in data.get("fields", [])
        )
        regions = tuple(
            RegionSpec(r["name"], _box(r["box"]), r.get("label", ""), int(r.get("page", 1)))
            for r in data.get("regions", [])
        )
        qr = data.get("qr")
        return Template(
            type=data["type"],
            version=str(data["version"]),
            width_mm=float(data["width_mm"]),
            height_mm=float(data["height_mm"]),
            fields=fields,
            regions=regions,
            title=data.get("title", ""),
            pages=int(data.get("pages", 1)),
            marks=tuple((float(x), float(y)) for x, y in data.get("marks", [])),
            mark_size_mm=float(data.get("mark_size_mm", 6.0)),
            qr=Box(qr[0], qr[1], qr[2], qr[2]) if qr else None,
            headings=tuple((str(t), float(x), float(y)) for t, x, y in data.get("headings", [])),
            labels=tuple((str(t), float(x), float(y)) for t, x, y in data.get("labels", [])),
            title_y_mm=float(data.get("title_y_mm", 34.0)),
        )
    except (KeyError, ValueError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"template {path}: {exc!r}") from exc


@cache
def templates(directory: Path = TEMPLATE_DIR) -> dict[str, Template]:
    """Return every template in the directory, keyed by "type/version"."""
    found = [load_template(p) for p in sorted(directory.glob("*.toml"))]
    return {t.key: t for t in found}


def latest(template_type: str) -> Template:
    """Return the highest version of a template type."""
    candidates = [t for t in templates().values() if t.type == template_type]
    return max(candidates, key=lambda t: (len(t.version), t.version))


def by_key(key: str) -> Template:
    """Return the template a document was captured with ("type/version")."""
    return templates()[key]
