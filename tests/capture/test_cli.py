"""`imaging samples` and `imaging capture`, run as a person would run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import ROOT


def _imaging(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_samples_render_and_capture_reports_one_json_line_per_file(tmp_path: Path) -> None:
    values = {
        "application_no": "TB2026000042",
        "applicant_name": "欧阳明月",
        "applicant_id_number": "110105198703150013",
        "name": "欧阳明月",
        "sex": "女",
        "ethnicity": "汉",
        "birth_date": "1990-12-01",
        "address": "上海市徐汇区学府路1号",
        "id_number": "310104199012010028",
        "issuing_authority": "上海市公安局徐汇分局",
        "valid_from": "2020-01-02",
        "valid_to": "长期",
        "extra_key_is_ignored": "x",
    }
    (tmp_path / "v.json").write_text(json.dumps(values, ensure_ascii=False), encoding="utf-8")
    for args in (
        ["form", "--values", "v.json", "--out", "form.png", "--dpi", "200"],
        ["form", "--values", "v.json", "--out", "form.pdf"],
        ["idcard", "--values", "v.json", "--side", "front", "--out", "front.png"],
        ["idcard", "--values", "v.json", "--side", "back", "--out", "back.png"],
        ["separator", "--out", "sep.png"],
    ):
        result = _imaging("samples", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "front.png").size == (1011, 638)  # 85.6 x 54 mm at 300 dpi
    assert round(Image.open(tmp_path / "form.png").info["dpi"][0]) == 200

    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    files = ["form.png", "form.pdf", "front.png", "back.png", "sep.png", "broken.png"]
    result = _imaging("capture", *files, "--json", "--debug-dir", "debug", cwd=tmp_path)
    assert result.returncode == 2  # one file was unreadable
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    types = [[d["type"] for d in line.get("documents", [])] for line in lines]
    assert types == [["application_form"], ["application_form"], ["idcard_front"], ["idcard_back"], [], []]
    form = lines[0]["documents"][0]
    assert form["application_no"] == "TB2026000042" and form["status"] == "ok"
    assert set(form["fields"]) >= {"applicant_name", "applicant_id_number", "sum_insured", "payment_years"}
    assert len(form["fields"]["applicant_name"]["box"]) == 4
    born_digital = lines[1]["documents"][0]["fields"]
    assert born_digital["applicant_name"]["text"] == "欧阳明月"  # the PDF's text layer, no OCR
    assert born_digital["applicant_name"]["value"] == "欧阳明月"
    assert born_digital["applicant_name"]["status"] == "accepted"
    # Every field says what OCR made of it; what is not proven goes to key-entry with its reasons.
    for field in form["fields"].values():
        assert field["status"] in ("accepted", "key_entry") and 0 <= field["confidence"] <= 100
        assert (field["status"] == "key_entry") == bool(field.get("reasons"))
    assert form["fields"]["applicant_id_number"]["value"] == "110105198703150013"
    assert form["fields"]["sum_insured"]["status"] == "key_entry"  # blank on this form
    assert form["fields"]["sum_insured"]["reasons"] == ["nothing written in the field"]
    front = lines[2]["documents"][0]["fields"]
    # This specimen's number has a wrong check digit: read right, and still not accepted.
    assert front["id_number"]["status"] == "key_entry" and front["id_number"]["value"] is None
    assert front["id_number"]["suggestion"] == "310104199012010028"
    assert "check character" in front["id_number"]["reasons"][0]
    assert front["sex"]["value"] == "女" and front["sex"]["status"] == "accepted"
    back = lines[3]["documents"][0]["fields"]
    assert back["valid_to"]["suggestion" if back["valid_to"]["value"] is None else "value"] == "长期"
    assert "damaged image/png" in lines[5]["error"]
    assert sorted(p.name for p in (tmp_path / "debug").iterdir()) == [
        "back-page1.png", "form-page1.png", "front-page1.png", "sep-page1.png",
    ]  # fmt: skip


def test_a_bad_values_file_gets_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text('{"birth_date": "15/03/1987"}')
    result = _imaging(
        "samples", "idcard", "--values", "v.json", "--side", "front", "--out", "c.png", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("imaging: bad card value") and "YYYY-MM-DD" in result.stderr


def test_samples_print_the_values_in_the_face_asked_for_and_refuse_an_unknown_one(tmp_path: Path) -> None:
    import numpy as np

    for face in ("uming", "zenhei"):
        result = _imaging(
            "samples", "form", "--font", face, "--out", f"{face}.png", "--dpi", "100", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
    ours, other = (np.asarray(Image.open(tmp_path / f"{f}.png").convert("L")) for f in ("uming", "zenhei"))
    assert ours.shape == other.shape and (ours != other).any()  # the values differ, in another face
    result = _imaging("samples", "form", "--font", "comic", "--out", "x.png", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("imaging: unknown face 'comic'")
    result = _imaging("samples", "form", "--font", "zenhei", "--out", "x.pdf", cwd=tmp_path)
    assert result.returncode == 2 and "--font is for page images" in result.stderr
