"""The directory joined to sign-in and reach: a person with no local account signs in at /login by their
directory password, in the roles and branch of their groups (real slapd); the branch tree of the
settings decides which branches' cases they see."""

from __future__ import annotations

from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from people import branches, sessions
from people.reach import covers
from people.sessions import Person
from roles import Role
from settings import Settings
from supervisor import free_port
from tests.people.conftest import GROUPS, PEOPLE, Slapd, directory_settings, password_of, sign_in

LDAP_FIELDS = [name for name in Settings.model_fields if name.startswith("ldap_")]


def with_directory(settings: Settings, server: Slapd, **overrides: object) -> Settings:
    """Return the test service's settings with the test directory's (a service-account search)."""
    directory = directory_settings(server, "search", **overrides)
    return settings.model_copy(update={name: getattr(directory, name) for name in LDAP_FIELDS})


def test_a_directory_person_signs_in_at_the_login_page_with_their_groups_role_and_branch(
    settings: Settings, redis_conn: Redis, slapd: Slapd
) -> None:
    configured = with_directory(settings, slapd)
    client = TestClient(create_app(configured))
    answer = sign_in(client, "alice", password_of("alice"))
    assert answer.status_code == 303, answer.text
    session = sessions.lookup(redis_conn, configured, client.cookies[sessions.COOKIE])
    assert session.person == Person("alice", "王丽", frozenset({Role.underwriter}), "8611", "directory")
    assert client.get("/viewer").status_code == 200

    assert sign_in(TestClient(create_app(configured)), "bob", "not his password").status_code == 401
    # Taken out of the group that gives the role: refused at the next sign-in.
    erin = f"uid=erin,{PEOPLE}"
    assert sign_in(TestClient(create_app(configured)), "erin", password_of("erin")).status_code == 303
    slapd.ldap("ldapmodify", f"dn: cn=keyers,{GROUPS}\nchangetype: modify\ndelete: member\nmember: {erin}\n")
    try:
        assert sign_in(TestClient(create_app(configured)), "erin", password_of("erin")).status_code == 401
    finally:
        slapd.ldap("ldapmodify", f"dn: cn=keyers,{GROUPS}\nchangetype: modify\nadd: member\nmember: {erin}\n")


def test_a_directory_that_cannot_be_reached_is_said_on_the_login_page_not_taken_for_a_bad_password(
    settings: Settings, slapd: Slapd
) -> None:
    configured = with_directory(settings, slapd).model_copy(
        update={"ldap_url": f"ldap://127.0.0.1:{free_port()}"}
    )
    answer = sign_in(TestClient(create_app(configured)), "alice", password_of("alice"))
    assert answer.status_code == 503 and "目录服务暂不可用" in answer.text


def test_the_branch_tree_of_the_settings_decides_reach_and_codes_alone_do_without_one() -> None:
    tree = branches.parse("86:8611,8612;8611:861101")
    assert covers(tree, "86", "861101") and covers(tree, "8611", "861101")
    assert not covers(tree, "8612", "861101") and not covers(tree, "861101", "8611")
    assert not covers(tree, "86", "86999")  # in a tree, a code it does not name is its own only
    assert covers(None, "86", "86999") and not covers(None, "8612", "861101")  # no tree: the codes' prefixes
    assert covers(branches.parse(""), "8611", "861101")
