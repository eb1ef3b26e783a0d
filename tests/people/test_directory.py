"""Staff sign-in against a real OpenLDAP slapd: the password by the person's own bind, roles and branch from
their groups, nothing found by a crafted name, and a clear DirectoryUnavailable when the server is away."""

from __future__ import annotations

import time
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from errors import ConfigError, DirectoryUnavailable
from people.directory import DirectoryEntry, authenticate
from roles import Role
from settings import Settings, load_settings
from supervisor import free_port
from tests.people.conftest import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    Slapd,
    directory_settings,
    password_of,
)
from tests.servers import tls_files

MODES = ["search", "memberof", "template"]


@pytest.mark.parametrize("mode", MODES)
def test_a_directory_user_signs_in_with_the_role_and_branch_of_their_groups(slapd: Slapd, mode: str) -> None:
    settings = directory_settings(slapd, mode)
    assert authenticate(settings, "alice", password_of("alice")) == DirectoryEntry(
        "alice", "王丽", frozenset({Role.underwriter}), "8611"
    )
    assert authenticate(settings, "bob", password_of("bob")) == DirectoryEntry(
        "bob", "Bob Li", frozenset({Role.keyer}), "8612"
    )
    dave = authenticate(settings, "dave", password_of("dave"))
    assert dave is not None and dave.roles == {Role.underwriter, Role.claims} and dave.branch == "86"


@pytest.mark.parametrize("mode", MODES)
def test_a_user_removed_from_their_group_at_runtime_is_refused(slapd: Slapd, mode: str) -> None:
    settings = directory_settings(slapd, mode)
    erin = f"uid=erin,{PEOPLE}"
    assert authenticate(settings, "erin", password_of("erin")).roles == {Role.keyer}
    slapd.ldap("ldapmodify", f"dn: cn=keyers,{GROUPS}\nchangetype: modify\ndelete: member\nmember: {erin}\n")
    try:
        assert authenticate(settings, "erin", password_of("erin")) is None
    finally:
        slapd.ldap("ldapmodify", f"dn: cn=keyers,{GROUPS}\nchangetype: modify\nadd: member\nmember: {erin}\n")
    assert authenticate(settings, "erin", password_of("erin")).roles == {Role.keyer}


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_or_empty_password_and_an_unknown_name_are_refused(slapd: Slapd, mode: str) -> None:
    settings = directory_settings(slapd, mode)
    assert authenticate(settings, "alice", password_of("alice")) is not None  # the refusals below are real
    assert authenticate(settings, "alice", password_of("bob")) is None
    assert authenticate(settings, "alice", password_of("alice") + " ") is None
    assert slapd.accepts_bind(f"uid=alice,{PEOPLE}", "")  # the server takes it as an unauthenticated bind
    assert authenticate(settings, "alice", "") is None
    assert authenticate(settings, "nobody", password_of("alice")) is None
    assert authenticate(settings, "", password_of("alice")) is None


# Unescaped, the first four would find alice (and her password would then bind); the rest find everybody or
# break the filter or DN.
CRAFTED = [
    "al*",
    "alice)(uid=*",
    "*)(uid=alice",
    "a*e",
    "*",
    "admin)(|(uid=*",
    "alice\\",
    "alice\x00",
    "(",
    ")",
]
CRAFTED_DN = ["alice,ou=people", "*", "alice+cn=x", "uid=alice", "#alice", "alice\\2c"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("username", CRAFTED + CRAFTED_DN)
def test_a_crafted_name_finds_nobody(slapd: Slapd, mode: str, username: str) -> None:
    assert authenticate(directory_settings(slapd, mode), username, password_of("alice")) is None


@pytest.mark.parametrize("mode", MODES)
def test_no_name_but_alice_s_own_opens_with_her_password(slapd: Slapd, mode: str) -> None:
    """Names built from her letters and every character that means something in a filter or a DN."""
    settings = directory_settings(slapd, mode)

    @hypothesis.settings(max_examples=150, deadline=None, derandomize=True)
    @hypothesis.given(st.text(alphabet='alicebo*()\\,=+<>#;" ', min_size=1, max_size=12))
    def check(username: str) -> None:
        entry = authenticate(settings, username, password_of("alice"))
        assert entry is None or username.strip(" ").lower() == "alice"

    check()


def test_parentheses_in_a_person_s_dn_are_escaped_in_the_group_search(slapd: Slapd) -> None:
    # uid=o(neil): his DN goes into (member=...); unescaped, the filter is malformed and every sign-in fails.
    entry = authenticate(directory_settings(slapd, "search"), "o(neil)", password_of("o(neil)"))
    assert entry == DirectoryEntry("o(neil)", "Owen O'Neil", frozenset({Role.keyer}), "8612")


def test_the_username_is_the_directory_s_spelling(slapd: Slapd) -> None:
    entry = authenticate(directory_settings(slapd, "search"), "ALICE", password_of("alice"))
    assert entry is not None and entry.username == "alice"


@pytest.mark.parametrize("mode", MODES)
def test_a_person_in_no_group_that_gives_a_role_is_refused(slapd: Slapd, mode: str) -> None:
    assert authenticate(directory_settings(slapd, mode), "carol", password_of("carol")) is None


def test_a_person_in_two_branches_is_refused_and_logged(
    slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    assert authenticate(directory_settings(slapd, "search"), "frank", password_of("frank")) is None
    assert "frank has 2 branches (['8611', '8612']), not one; refused" in caplog.text


def test_the_user_filter_leaves_out_who_it_does_not_match(slapd: Slapd) -> None:
    settings = directory_settings(slapd, "search", ldap_user_filter="(departmentNumber=8612)")
    assert authenticate(settings, "alice", password_of("alice")) is None
    assert authenticate(settings, "bob", password_of("bob")) is not None


def test_the_group_filter_says_how_a_group_names_its_members(slapd: Slapd) -> None:
    members = directory_settings(
        slapd, "search", ldap_group_filter="(&(objectClass=groupOfNames)(member={dn}))"
    )
    assert authenticate(members, "alice", password_of("alice")).roles == {Role.underwriter}
    unique = directory_settings(slapd, "search", ldap_group_filter="(uniqueMember={dn})")  # none here
    assert authenticate(unique, "alice", password_of("alice")) is None


def test_without_a_directory_url_nobody_is_found_there(slapd: Slapd) -> None:
    assert authenticate(Settings(), "alice", password_of("alice")) is None


def test_the_service_password_may_come_from_a_file(slapd: Slapd, tmp_path: Path) -> None:
    secret = tmp_path / "ldap.pass"
    secret.write_text(password_of("imaging") + "\n")
    settings = directory_settings(slapd, "search", ldap_bind_password=None, ldap_bind_password_file=secret)
    assert authenticate(settings, "alice", password_of("alice")) is not None


def test_a_refused_service_account_is_named(slapd: Slapd) -> None:
    settings = directory_settings(slapd, "search", ldap_bind_password="wrong")
    with pytest.raises(DirectoryUnavailable, match=f"IMAGING_LDAP_BIND_DN={SERVICE_DN}"):
        authenticate(settings, "alice", password_of("alice"))


def test_a_malformed_user_filter_is_named(slapd: Slapd) -> None:
    settings = directory_settings(slapd, "search", ldap_user_filter="(&(objectClass=person)")
    with pytest.raises(
        DirectoryUnavailable, match=r"^IMAGING_LDAP_USER_FILTER or .*: \(&\(objectClass=person\),"
    ):
        authenticate(settings, "alice", password_of("alice"))


def test_a_base_dn_that_does_not_exist_is_named(slapd: Slapd) -> None:
    settings = directory_settings(slapd, "search", ldap_base_dn="ou=staff,dc=example,dc=cn")
    with pytest.raises(
        DirectoryUnavailable, match="IMAGING_LDAP_BASE_DN: the directory has no entry ou=staff"
    ):
        authenticate(settings, "alice", password_of("alice"))


def test_a_stopped_server_is_unavailable_with_a_clear_message(tmp_path: Path) -> None:
    server = Slapd(tmp_path)
    server.start()
    settings = directory_settings(server, "search")
    try:
        assert authenticate(settings, "alice", password_of("alice")) is not None
    finally:
        server.stop()
    started = time.monotonic()
    with pytest.raises(
        DirectoryUnavailable, match=r"ldap://127.0.0.1:\d+ cannot be reached .*Connection refused"
    ):
        authenticate(settings, "alice", password_of("alice"))
    assert time.monotonic() - started < 1


def test_the_next_server_is_tried_when_one_cannot_be_reached(slapd: Slapd) -> None:
    away = f"ldap://127.0.0.1:{free_port()}"
    settings = directory_settings(slapd, "search", ldap_url=f"{away} {slapd.url}")
    assert authenticate(settings, "alice", password_of("alice")) is not None
    both_away = directory_settings(slapd, "search", ldap_url=f"{away} ldap://127.0.0.1:{free_port()}")
    with pytest.raises(DirectoryUnavailable, match=f"the directory at {away} .* cannot be reached"):
        authenticate(both_away, "alice", password_of("alice"))


def test_a_server_that_does_not_answer_is_unavailable_within_the_timeout(slapd: Slapd) -> None:
    settings = directory_settings(slapd, "search", ldap_timeout=1)
    slapd.pause()
    try:
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable, match=r"did not answer within 1 s \(IMAGING_LDAP_TIMEOUT\)"):
            authenticate(settings, "alice", password_of("alice"))
        assert time.monotonic() - started < 1.5
    finally:
        slapd.resume()
    assert authenticate(settings, "alice", password_of("alice")) is not None


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_tls_to_the_directory_is_checked_against_the_ca_file(slapd: Slapd, tls: str, tmp_path: Path) -> None:
    url = {"starttls": slapd.url, "ldaps": slapd.ldaps_url}[tls]
    over_tls = {"ldap_url": url, "ldap_starttls": tls == "starttls", "ldap_ca_file": slapd.ca_file}
    assert authenticate(directory_settings(slapd, "search", **over_tls), "alice", password_of("alice"))
    # A CA of the same name that did not sign the server's certificate.
    other_ca, _, _ = tls_files(tmp_path, "Directory test CA (tests only)")
    with pytest.raises(DirectoryUnavailable, match="TLS with the directory .* failed .*IMAGING_LDAP_CA_FILE"):
        authenticate(
            directory_settings(slapd, "search", **over_tls | {"ldap_ca_file": other_ca}), "alice", "x"
        )


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_a_certificate_for_another_host_is_refused(slapd: Slapd, tls: str) -> None:
    # The certificate names 127.0.0.1 and localhost; the same server reached as 127.0.0.2 is neither.
    url = {"starttls": slapd.url, "ldaps": slapd.ldaps_url}[tls].replace("127.0.0.1", "127.0.0.2")
    over_tls = {"ldap_url": url, "ldap_starttls": tls == "starttls", "ldap_ca_file": slapd.ca_file}
    with pytest.raises(
        DirectoryUnavailable,
        match="TLS with the directory .* failed: its certificate does not name '127.0.0.2'",
    ):
        authenticate(directory_settings(slapd, "search", **over_tls), "alice", password_of("alice"))


# A directory setting that cannot work, or would send passwords in clear, stops start-up, naming it.
COMPLETE = {
    "IMAGING_LDAP_URL": "ldaps://dc1.insurer.example",
    "IMAGING_LDAP_BASE_DN": "ou=people,dc=insurer,dc=cn",
    "IMAGING_LDAP_ROLE_GROUPS": "keyer:cn=keyers,ou=groups,dc=insurer,dc=cn",
    "IMAGING_LDAP_BRANCH_ATTRIBUTE": "departmentNumber",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"IMAGING_LDAP_URL": "ldap://dc1.insurer.example"},
            "IMAGING_LDAP_URL: ldap://dc1.insurer.example sends passwords in clear",
        ),
        ({"IMAGING_LDAP_URL": "http://dc1.insurer.example"}, "IMAGING_LDAP_URL: give ldap://host"),
        (
            {"IMAGING_LDAP_URL": "ldaps://dc1.insurer.example ldap://dc2.insurer.example"},
            "IMAGING_LDAP_URL: ldap://dc2.insurer.example sends passwords in clear",
        ),
        (
            {"IMAGING_LDAP_STARTTLS": "true"},
            "IMAGING_LDAP_STARTTLS: ldaps://dc1.insurer.example is TLS from the start",
        ),
        ({"IMAGING_LDAP_BASE_DN": ""}, "IMAGING_LDAP_BASE_DN: not set"),
        ({"IMAGING_LDAP_ROLE_GROUPS": ""}, "IMAGING_LDAP_ROLE_GROUPS: not set"),
        ({"IMAGING_LDAP_ROLE_GROUPS": "boss:cn=bosses,dc=x"}, "IMAGING_LDAP_ROLE_GROUPS: role 'boss' is not"),
        ({"IMAGING_LDAP_ROLE_GROUPS": "keyer"}, "IMAGING_LDAP_ROLE_GROUPS: 'keyer' is not a name:group DN"),
        ({"IMAGING_LDAP_BRANCH_ATTRIBUTE": ""}, "IMAGING_LDAP_BRANCH_GROUPS: not set, nor"),
        (
            {"IMAGING_LDAP_BRANCH_GROUPS": "86 01:cn=b,dc=x"},
            "IMAGING_LDAP_BRANCH_GROUPS: '86 01' is not a branch",
        ),
        ({"IMAGING_LDAP_BIND_DN": "cn=imaging,dc=insurer,dc=cn"}, "IMAGING_LDAP_BIND_PASSWORD: not set"),
        ({"IMAGING_LDAP_BIND_PASSWORD_FILE": "/nonexistent"}, "IMAGING_LDAP_BIND_PASSWORD_FILE: cannot read"),
        ({"IMAGING_LDAP_CA_FILE": "/nonexistent"}, "IMAGING_LDAP_CA_FILE: cannot read"),
        (
            {"IMAGING_LDAP_USER_DN_TEMPLATE": "uid=x,dc=cn"},
            "IMAGING_LDAP_USER_DN_TEMPLATE: has no {username}",
        ),
        ({"IMAGING_LDAP_USER_FILTER": "objectClass=person"}, "IMAGING_LDAP_USER_FILTER: give a filter"),
        ({"IMAGING_LDAP_TIMEOUT": "0"}, "IMAGING_LDAP_TIMEOUT:"),
        ({"IMAGING_LDAP_GROUP_FILTER": "(member=x)"}, "IMAGING_LDAP_GROUP_FILTER: give a filter"),
    ],
)
def test_a_directory_setting_that_cannot_work_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, str], message: str
) -> None:
    for name, value in (COMPLETE | changes).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(message)


def test_complete_directory_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in COMPLETE.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.ldap_roles == [(Role.keyer, "cn=keyers,ou=groups,dc=insurer,dc=cn")]
    monkeypatch.setenv("IMAGING_LDAP_URL", "ldap://127.0.0.1:3389")  # plain LDAP on this machine only
    assert load_settings().ldap_url == "ldap://127.0.0.1:3389"


def test_a_group_dn_is_matched_whatever_its_case_and_spaces(slapd: Slapd) -> None:
    roles = f"underwriter:CN=Underwriters, {GROUPS.upper().replace(',', ' , ')}"
    entry = authenticate(
        directory_settings(slapd, "search", ldap_role_groups=roles), "alice", password_of("alice")
    )
    assert entry is not None and entry.roles == {Role.underwriter}
