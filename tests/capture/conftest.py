"""Clean renders shared by the capture tests (rendering is the slow part, so it happens once)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from capture.render import render_form, render_idcard, render_separator
from capture.specimens import card_values, form_values
from capture.templates import latest


@pytest.fixture(scope="session")
def form_samples() -> list[tuple[dict[str, str], np.ndarray]]:
    """Six filled forms at 300 dpi, each with its own values."""
    rng = random.Random(20261123)
    values = [form_values(rng) for _ in range(6)]
    return [(v, render_form(latest("application_form"), v, 300)) for v in values]


@pytest.fixture(scope="session")
def card_samples() -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
    """Four people's cards: values, front and back at 300 dpi."""
    rng = random.Random(1123)
    out = []
    for _ in range(4):
        v = card_values(rng)
        out.append((v, render_idcard(latest("idcard_front"), v), render_idcard(latest("idcard_back"), v)))
    return out


@pytest.fixture(scope="session")
def separator_page() -> np.ndarray:
    return render_separator(200)
