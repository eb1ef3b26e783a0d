"""Staff accounts made straight in the store, and signing in through the real /login form; and a private
OpenLDAP server (Debian's slapd) for the directory tests: started once per session on free loopback ports
(plain LDAP with StartTLS, and LDAPS) in a temporary directory, with a small generated tree of people and
groups, its own test CA, and the memberof overlay (so entries carry memberOf as in AD)."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from people import changes
from roles import Role
from settings import Settings
from storage import ObjectStore, open_store
from supervisor import free_port
from tests.servers import tls_files, wait_until

SUFFIX = "dc=example,dc=cn"
ROOT_DN = f"cn=admin,{SUFFIX}"
SERVICE_DN = f"cn=imaging,ou=services,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PEOPLE = f"ou=people,{SUFFIX}"
LOOPBACKS = ("127.0.0.1", "127.0.0.2")

# uid: (full name, branch in departmentNumber, groups). Groups named role-* give roles, branch-* branches.
USERS = {
    "alice": ("王丽", "8611", ["underwriters", "branch-8611"]),
    "bob": ("Bob Li", "8612", ["keyers", "branch-8612"]),
    "carol": ("Carol Zhang", "8611", ["canteen", "branch-8611"]),  # in no group that gives a role
    "dave": ("Dave Chen", "86", ["underwriters", "claims", "branch-86"]),
    "erin": ("Erin Zhao", "8611", ["keyers", "branch-8611"]),
    "frank": ("Frank Wu", "8611", ["underwriters", "branch-8611", "branch-8612"]),  # in two branches
    "o(neil)": ("Owen O'Neil", "8612", ["keyers", "branch-8612"]),  # parentheses in his DN
}
ROLE_GROUPS = (
    f"underwriter:cn=underwriters,{GROUPS};keyer:cn=keyers,{GROUPS};"
    f"claims:cn=claims,{GROUPS};admin:cn=admins,{GROUPS}"
)
BRANCH_GROUPS = ";".join(f"{code}:cn=branch-{code},{GROUPS}" for code in ("86", "8611", "8612"))


def password_of(uid: str) -> str:
    return f"pw-{uid}-Secret1"


def _hash(password: str) -> str:
    return subprocess.run(
        ["slappasswd", "-s", password], capture_output=True, text=True, check=True
    ).stdout.strip()


def _tree_ldif() -> str:
    """Return the LDIF of the tree: the suffix, people, a service account and groupOfNames groups."""
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Insurance",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: imaging\nsn: service\n"
        f"userPassword: {_hash(password_of('imaging'))}",
    ]
    members: dict[str, list[str]] = {"admins": [SERVICE_DN]}  # groupOfNames needs a member
    for uid, (name, branch, groups) in USERS.items():
        dn = f"uid={escape_value(uid)},{PEOPLE}"
        entries.append(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn:: {base64.b64encode(name.encode()).decode()}\nsn: {uid}\n"
            f"departmentNumber: {branch}\nuserPassword: {_hash(password_of(uid))}"
        )
        for group in groups:
            members.setdefault(group, []).append(dn)
    for group, dns in members.items():
        lines = "".join(f"\nmember: {dn}" for dn in dns)
        entries.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}{lines}")
    return "\n\n".join(entries) + "\n"


def escape_value(value: str) -> str:
    """Return an attribute value escaped for a DN (RFC 4514), for the few characters the tree uses."""
    return "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)


@dataclass
class Slapd:
    directory: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def listeners(self) -> list[str]:
        """Both ports, also on 127.0.0.2: the same server by an address its certificate does not name."""
        return [f"{url}/".replace("127.0.0.1", ip) for url in (self.url, self.ldaps_url) for ip in LOOPBACKS]

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def start(self) -> None:
        """Write the configuration, start slapd in the foreground and load the tree."""
        d = self.directory
        (d / "db").mkdir(exist_ok=True)
        _, cert, key = tls_files(d, "Directory test CA (tests only)")
        (d / "slapd.conf").write_text(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
            "include /etc/ldap/schema/inetorgperson.schema\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n"
            f"pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n"
            # As Active Directory does: a name with an empty password binds (unauthenticated, RFC 4513 5.1.2).
            "allow bind_anon_dn\n"
            f"TLSCACertificateFile {self.ca_file}\nTLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
            f'database mdb\nsuffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\nrootpw {_hash(password_of("admin"))}\n'
            f"directory {d}/db\nmaxsize 10485760\n"
            "overlay memberof\n"
            "access to attrs=userPassword by self write by anonymous auth by * none\n"
            "access to * by * read\n"
        )
        self.proc = subprocess.Popen(
            ["slapd", "-f", str(d / "slapd.conf"), "-h", " ".join(self.listeners), "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=(d / "slapd.log").open("wb"),
            start_new_session=True,
        )
        wait_until(self._answers, 15, "slapd")
        self.ldap("ldapadd", _tree_ldif())

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"slapd exited: {(self.directory / 'slapd.log').read_text()[-2000:]}")
        done = subprocess.run(
            ["ldapwhoami", "-x", "-H", self.url, "-D", ROOT_DN, "-w", password_of("admin")],
            capture_output=True,
        )
        return done.returncode == 0

    def accepts_bind(self, dn: str, password: str) -> bool:
        """Return whether the server itself answers a simple bind as dn with this password with success."""
        done = subprocess.run(
            ["ldapwhoami", "-x", "-H", self.url, "-D", dn, "-w", password], capture_output=True
        )
        return done.returncode == 0

    def ldap(self, tool: str, ldif: str) -> None:
        """Run ldapadd or ldapmodify as the directory's administrator with the LDIF on standard input."""
        subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", password_of("admin")],
            input=ldif.encode(),
            capture_output=True,
            check=True,
        )

    def pause(self) -> None:
        """Freeze the server: it accepts connections (the kernel does) and answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


def directory_settings(server: Slapd, mode: str = "search", **overrides: object) -> Settings:
    """Return settings for the test directory, in one of the ways a deployment finds people and groups:
    search: a service account searches people and groupOfNames groups; branches by group;
    memberof: anonymous search, groups from memberOf, the branch from departmentNumber;
    template: bind as uid={username},ou=people,...; groups searched with the person's own bind."""
    common = {"ldap_url": server.url, "ldap_role_groups": ROLE_GROUPS, "ldap_timeout": 2}
    modes = {
        "search": {
            "ldap_base_dn": PEOPLE,
            "ldap_bind_dn": SERVICE_DN,
            "ldap_bind_password": password_of("imaging"),
            "ldap_group_base_dn": GROUPS,
            "ldap_branch_groups": BRANCH_GROUPS,
            "ldap_user_filter": "(objectClass=inetOrgPerson)",
        },
        "memberof": {"ldap_base_dn": SUFFIX, "ldap_branch_attribute": "departmentNumber"},
        "template": {
            "ldap_user_dn_template": f"uid={{username}},{PEOPLE}",
            "ldap_group_base_dn": GROUPS,
            "ldap_branch_attribute": "departmentNumber",
        },
    }
    return Settings(**(common | modes[mode] | overrides))


PASSWORD = "correct horse battery"


@pytest.fixture
def people_store(settings: Settings) -> ObjectStore:
    return open_store(settings)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def add_person(
    store: ObjectStore,
    conn: Redis,
    username: str,
    *roles: Role,
    branch: str = "8611",
    password: str = PASSWORD,
) -> None:
    changes.add_user(store, conn, "test", username, username.title(), list(roles), branch, password)


def login_csrf(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_: str = "/viewer"):
    """Sign in through the login form as a browser would; return the answer (303 on success)."""
    token = login_csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )


def page_csrf(client: TestClient, path: str = "/viewer") -> str:
    """Return the session's CSRF token as a staff page carries it."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
