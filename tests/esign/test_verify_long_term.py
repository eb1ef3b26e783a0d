"""`imaging verify` on the B-LTA copies the signer makes against a real CA (certomancer's OCSP, CRLs
and TSA), with that CA stopped: the answer rests on the validation data and the document timestamp in
the file alone."""

from __future__ import annotations

import json
from pathlib import Path

from settings import Settings
from tests.conftest import run_cli
from tests.esign.test_long_term import PASSWORD, RealCA, _sealed, real_ca  # noqa: F401  (the fixture)


def test_imaging_verify_checks_a_b_lta_copy_with_the_network_off(
    real_ca: RealCA,  # noqa: F811
    tmp_path: Path,
) -> None:
    copies = _sealed(real_ca, "B-LTA")
    real_ca.stop()  # nothing can be fetched from here on
    settings = Settings(data_dir=tmp_path / "var")
    roots = str(real_ca.directory / "root.pem")
    for name, data, password in (("archive", copies.archive, None), ("customer", copies.customer, PASSWORD)):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        done = run_cli(
            settings,
            "verify",
            str(path),
            "--roots",
            roots,
            "--json",
            *(["--password", password] if password else []),
        )
        assert done.returncode == 0, done.stdout
        answer = json.loads(done.stdout)
        assert [s["kind"] for s in answer["signatures"]] == ["signature", "document timestamp"], name
        assert all(s["trusted"] and not s["failures"] for s in answer["signatures"]), answer
        data_in_file = answer["validation_data"]
        assert data_in_file["certificates"] and (data_in_file["ocsp_responses"] or data_in_file["crls"]), name
    broken = bytearray(copies.archive)
    broken[len(broken) // 4] ^= 0x01
    (tmp_path / "broken.pdf").write_bytes(bytes(broken))
    done = run_cli(settings, "verify", str(tmp_path / "broken.pdf"), "--roots", roots, "--json")
    assert done.returncode in (1, 2) and json.loads(done.stdout)["ok"] is False
