"""A document fit to keep: every font embedded (the seal's too), real dates, metadata and the visible seal,
judged from outside with poppler (pdffonts, pdfinfo, pdfsig, pdftoppm) and qpdf on both signed copies."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy
import pytest
from PIL import Image, ImageDraw
from pyhanko.pdf_utils.reader import PdfFileReader

from errors import ConfigError
from esign.epolicy import sample_request
from esign.keys import init_test_keys
from esign.render import SEAL_BOX, SEAL_XOBJECT, SealLook, document_metadata, render
from esign.sign import load_pkcs12, seal, seal_look_from_settings
from settings import Settings

PASSWORD = "150013"
SEALED_AT = datetime(2026, 11, 30, 7, 8, 9, tzinfo=UTC)  # 15:08:09 in Shanghai


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory):
    paths = init_test_keys(tmp_path_factory.mktemp("keys"))
    return load_pkcs12(paths["pkcs12"], paths["passphrase"].read_bytes())


def _sealed(signer, look: SealLook | None = None):
    policy = sample_request()
    pdf = render(policy, 1, "https://x/verify/P2026110000123?v=1", SEALED_AT, look or SealLook())
    return seal(pdf, signer, PASSWORD, "owner", document=document_metadata(policy, 1, SEALED_AT))


@pytest.fixture(scope="module")
def copies(signer):
    return _sealed(signer)


def _files(copies, tmp_path: Path) -> list[tuple[Path, list[str]]]:
    (tmp_path / "archive.pdf").write_bytes(copies.archive)
    (tmp_path / "customer.pdf").write_bytes(copies.customer)
    return [(tmp_path / "archive.pdf", []), (tmp_path / "customer.pdf", ["-upw", PASSWORD])]


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_font_of_both_copies_is_embedded_the_seals_too(copies, tmp_path: Path) -> None:
    for path, password in _files(copies, tmp_path):
        fonts = _run("pdffonts", *password, str(path)).splitlines()[2:]
        assert fonts, "no font at all"
        # name, type, encoding, then emb sub uni: every font embedded; no Helvetica or Courier named anywhere
        assert all(line.split()[-5] == "yes" for line in fonts), fonts
        assert not [line for line in fonts if "Helvetica" in line or "Courier" in line], fonts
        report = _run("pdfsig", *password, str(path))
        assert "Signature is Valid." in report and "Total document signed" in report, report


def test_the_signature_shows_the_rendered_seal_not_pyhankos_stamp(copies) -> None:
    for data, password in ((copies.archive, None), (copies.customer, PASSWORD)):
        reader = PdfFileReader(io.BytesIO(data))
        if password:
            reader.decrypt(password)
        page = reader.root["/Pages"]["/Kids"][0]
        (widget,) = [a.get_object() for a in page["/Annots"] if a.get_object().get("/FT") == "/Sig"]
        assert [float(v) for v in widget["/Rect"]] == list(SEAL_BOX)
        appearance = widget["/AP"].raw_get("/N")
        assert appearance == page["/Resources"]["/XObject"].raw_get(SEAL_XOBJECT)  # the renderer's form
        form = appearance.get_object()
        assert list(form["/Resources"]["/Font"]) and "/Courier" not in str(form["/Resources"])
        assert int(widget["/F"]) & 4, "the seal prints"


def _red_in_seal_box(path: Path, *options: str) -> int:
    _run("pdftoppm", *options, "-r", "72", "-png", "-singlefile", str(path), str(path.with_suffix("")))
    image = Image.open(path.with_suffix(".png")).convert("RGB")
    x1, y1, x2, y2 = (round(v) for v in SEAL_BOX)
    box = image.crop((x1, image.height - y2, x2, image.height - y1))
    pixels = numpy.asarray(box, dtype=int)
    return int(((pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)).sum())


def test_the_seal_shows_once_with_the_company_and_the_time_in_shanghai(copies, tmp_path: Path) -> None:
    path = _files(copies, tmp_path)[0][0]
    text = _run("pdftotext", str(path), "-")
    assert "签章单位" in text and "2026-11-30 15:08:09" in text and "北京时间" in text
    # The widget paints the seal; the page only references it (annotations hidden, no red in the box).
    assert _red_in_seal_box(path) > 200
    assert _red_in_seal_box(path, "-hide-annotations") == 0


def test_real_dates_title_keywords_and_an_identity_from_the_policy_data(copies, tmp_path: Path) -> None:
    for path, password in _files(copies, tmp_path):
        info = " ".join(_run("pdfinfo", *password, "-isodates", str(path)).split())
        assert "电子保险单 P2026110000123" in info and "P2026110000123,第1版,KN01" in info, info
        assert "CreationDate: 2026-11-30T07:08:09Z" in info, info  # not reportlab's 2000-01-01
        assert "ModDate: 2000" not in info and "Metadata Stream: yes" in info
    args = ["qpdf", "--qdf", "--object-streams=disable", str(tmp_path / "archive.pdf"), "-"]
    xmp = subprocess.run(args, capture_output=True, timeout=60).stdout.decode(errors="replace")
    identity = document_metadata(sample_request(), 1, SEALED_AT).xmp_extra[0]
    (document_id,) = [v.value for k, v in identity if k.local_name == "DocumentID"]
    assert f'xmpMM:DocumentID="{document_id}"' in xmp and 'xmp:CreateDate="2026-11-30T07:08:09' in xmp
    changed = sample_request().model_copy(update={"premium": sample_request().premium + 1})
    assert document_metadata(changed, 1, SEALED_AT).xmp_extra != [identity]  # other data, other identity


def _seal_png(path: Path) -> Path:
    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((8, 8, 232, 232), outline=(200, 20, 20, 255), width=12)
    image.save(path)
    return path


def test_the_seal_image_and_company_are_settings(signer, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, seal_image=_seal_png(tmp_path / "seal.png"), seal_company="示范分公司"
    )
    look = seal_look_from_settings(settings)
    assert look.image and look.company == "示范分公司"
    copies = _sealed(signer, look)
    (tmp_path / "a.pdf").write_bytes(copies.archive)
    assert "示范分公司" in _run("pdftotext", str(tmp_path / "a.pdf"), "-")
    images = _run("pdfimages", "-list", str(tmp_path / "a.pdf"))
    assert "smask" in images, images  # the PNG and its transparency
    with pytest.raises(ConfigError, match="IMAGING_SEAL_IMAGE: .* is not a PNG"):
        seal_look_from_settings(Settings(data_dir=tmp_path, seal_image=Path(__file__)))
    with pytest.raises(ConfigError, match="IMAGING_SEAL_IMAGE: cannot read"):
        seal_look_from_settings(Settings(data_dir=tmp_path, seal_image=tmp_path / "none.png"))


def test_a_long_term_level_without_a_time_stamping_service_is_refused_at_start() -> None:
    from settings import load_settings

    with pytest.raises(ConfigError, match="IMAGING_PADES_LEVEL: B-LTA needs a time-stamping service"):
        load_settings(pades_level="B-LTA")
    assert load_settings(pades_level="B-B").pades_level == "B-B"


def test_an_encrypted_pdf_certified_in_an_update_gets_the_seal_too(signer, tmp_path: Path) -> None:
    from esign.sign import certify, encrypt

    pdf = render(sample_request(), 1, "https://x/v", SEALED_AT)
    (tmp_path / "e.pdf").write_bytes(certify(encrypt(pdf, PASSWORD, "owner"), signer, PASSWORD))
    assert _red_in_seal_box(tmp_path / "e.pdf", "-upw", PASSWORD) > 200
    assert "Signature is Valid." in _run("pdfsig", "-upw", PASSWORD, str(tmp_path / "e.pdf"))


def test_each_customers_name_prints_and_the_qr_code_reads_back_from_kept_font_subsets(tmp_path: Path) -> None:
    import cv2

    base = sample_request()
    names = ("欧阳靓颖", "龘齉鑫")  # the second's characters are in no seeded subset: a subset of its own
    for n, name in enumerate(names):
        policy = base.model_copy(update={"holder": base.holder.model_copy(update={"name": name})})
        url = f"https://x/verify/P2026110000123?v=1&d={n}"
        (tmp_path / f"{n}.pdf").write_bytes(render(policy, 1, url, SEALED_AT))
        text = _run("pdftotext", str(tmp_path / f"{n}.pdf"), "-")
        assert name in text and "康宁终身重大疾病保险" in text and "法定" not in text
        _run(
            "pdftoppm", "-r", "100", "-png", "-singlefile", str(tmp_path / f"{n}.pdf"), str(tmp_path / f"{n}")
        )
        decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(tmp_path / f"{n}.png")))
        assert decoded == url
        fonts = _run("pdffonts", str(tmp_path / f"{n}.pdf")).splitlines()[2:]
        assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts


def test_the_kept_font_subset_is_the_one_reportlab_makes() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFontFace

    from printing import cjk_font

    face = pdfmetrics.getFont(cjk_font()).face
    subset = [0] + [ord(c) for c in "电子保险单张三丰"]
    made = face.makeSubset(subset)
    assert face.makeSubset(list(subset)) is made  # kept, not made again
    assert made == TTFontFace.makeSubset(face, subset)  # reportlab's own, byte for byte


def test_the_archive_copy_claims_pdfa_2b_with_an_srgb_output_intent_the_customers_copy_does_not(
    copies, tmp_path: Path
) -> None:
    from PIL import ImageCms

    for (path, password), data in zip(
        _files(copies, tmp_path), (copies.archive, copies.customer), strict=True
    ):
        _run("qpdf", "--check", *(["--password=" + password[1]] if password else []), str(path))
        reader = PdfFileReader(io.BytesIO(data))
        if password:
            reader.decrypt(password[1])
        (intent,) = [i.get_object() for i in reader.root["/OutputIntents"]]
        assert intent["/S"] == "/GTS_PDFA1" and intent["/OutputConditionIdentifier"] == "sRGB IEC61966-2.1"
        profile = intent["/DestOutputProfile"]
        assert profile["/N"] == 3
        icc = ImageCms.ImageCmsProfile(io.BytesIO(profile.data))
        assert "sRGB" in ImageCms.getProfileDescription(icc)
        xmp = reader.root["/Metadata"]
        assert "/Filter" not in xmp  # PDF/A: the metadata stream stays readable without decoding
        claims = b'pdfaid:part="2"' in xmp.data and b'pdfaid:conformance="B"' in xmp.data
        assert claims == (not password), "only the archive copy (not encrypted) claims PDF/A-2b"
