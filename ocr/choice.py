"""decide_choice: a choice field's tick boxes in (how much of each is inked), a value out by the same rule as
text fields: accepted by machine only when it can show it is right, else key-entry with the reasons, here
with the choices offered to the keyer.

A box counts as ticked at MARKED or more of its inside inked, as empty at EMPTY or less; between the two
it is unclear (a stray dot, a faint or erased tick). One box ticked and every other empty: that option is
the value, validated as the field's kind is. None ticked, two ticked, or any unclear: a person decides.
"""

from __future__ import annotations

from ocr.decide import Decision
from ocr.validate import validate
from vocabulary import FieldStatus

# The sample renderer's ticks filled 0.33-0.37 of a 4 mm box inside its line, scanned at 200-300 dpi with
# blur, noise, JPEG 70 and uneven light; empty boxes 0.000. A hand's tick is thinner: MARKED leaves it
# room. The gap between EMPTY and MARKED is the accept margin: a box in it is neither ticked nor empty.
MARKED = 0.06
EMPTY = 0.025


def decide_choice(kind: str, name: str, marks: tuple[tuple[str, float], ...]) -> Decision:
    """Return the decision for a choice field from the inked share of each option's tick box."""
    choices = [label for label, _ in marks]
    ticked = [label for label, fill in marks if fill >= MARKED]
    unclear = [label for label, fill in marks if EMPTY < fill < MARKED]
    reasons = []
    if unclear:
        reasons.append("unclear mark in " + ", ".join(unclear))
    if len(ticked) > 1:
        reasons.append("more than one ticked: " + ", ".join(ticked))
    if not ticked and not unclear:
        reasons.append("nothing ticked")
    suggestion = ticked[0] if len(ticked) == 1 else None
    if not reasons and suggestion is not None:
        checked = validate(kind, suggestion, name)
        if checked.ok:
            margin = min(
                min(f for _, f in marks if _ == suggestion) - MARKED,
                EMPTY - max((f for label, f in marks if label != suggestion), default=0.0),
            )
            return Decision(
                checked.value,
                round(100.0 * min(1.0, 0.5 + margin * 5), 1),
                FieldStatus.accepted,
                choices=choices,
            )
        reasons += list(checked.problems)
    return Decision(None, 0.0, FieldStatus.key_entry, reasons, suggestion, choices=choices)
