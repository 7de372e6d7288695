"""Profiles and config: host/user/token normalisation, the three sources, every config error."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pvekit
from pvekit import ConfigError
from pvekit._config import Profile, Secret, load_config, normalize_host

PW = "hunter2-Sup3r"
TOKEN = "5e1b7c2a-aaaa-bbbb-cccc-0123456789ab"


def reveal(secret: object) -> str:
    assert isinstance(secret, Secret)
    return secret.reveal()


def write(path: str | Path, text: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def cfg_file() -> Path:
    return Path(os.environ["PVEKIT_CONFIG"])


@pytest.fixture
def tui_file() -> Path:
    return Path(os.environ["PVEKIT_PVETUI_CONFIG"])


# -- host, user, token normalisation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "scheme", "hostport", "path"),
    [
        ("pve1", None, "pve1:8006", "/api2/json"),
        ("pve1:8006", None, "pve1:8006", "/api2/json"),
        ("PVE1.Example.com:443", None, "pve1.example.com:443", "/api2/json"),
        ("https://pve1:8006", "https", "pve1:8006", "/api2/json"),
        ("https://pve1:8006/", "https", "pve1:8006", "/api2/json"),
        ("https://pve1:8006/api2/json", "https", "pve1:8006", "/api2/json"),
        ("https://pve1:8006/api2/json/", "https", "pve1:8006", "/api2/json"),
        ("http://127.0.0.1:9000", "http", "127.0.0.1:9000", "/api2/json"),
        ("https://proxy.example/pve", "https", "proxy.example:8006", "/pve/api2/json"),
        ("[::1]:8443", None, "[::1]:8443", "/api2/json"),
        ("fd00::5", None, "[fd00::5]:8006", "/api2/json"),
        ("  pve1  ", None, "pve1:8006", "/api2/json"),
    ],
)
def test_normalize_host(raw: str, scheme: str | None, hostport: str, path: str) -> None:
    assert normalize_host(raw) == (scheme, hostport, path)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty"),
        ("ftp://pve1", "scheme"),
        ("pve1:0", "port"),
        ("pve1:99999", "port"),
        ("pve1:abc", "port"),
        ("https://pve1/api2/extjs", "JSON API path"),
        ("https://pve1/?x=1", "query"),
        ("bad host", "not a valid host"),
        ("[::1", "unclosed"),
        ("[zz::1]:8006", "IPv6"),
    ],
)
def test_normalize_host_rejects(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize_host(raw)


def test_host_with_credentials_is_rejected_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        Profile(host=f"https://root:{PW}@pve1", password=PW)
    assert "credentials" in str(info.value)
    assert PW not in str(info.value)


def test_profile_defaults_and_reprs() -> None:
    p = Profile(host="pve1", user="root", password=PW)
    assert p.host == "pve1:8006"
    assert p.base_url == "https://pve1:8006/api2/json"
    assert p.user == "root@pam"
    assert p.auth_kind == "password"
    assert p.tls == "verified"
    assert not p.insecure
    assert PW not in repr(p)
    assert "pve1:8006" in repr(p) and "root@pam" in repr(p) and "verified" in repr(p)
    assert repr(p.password) == "<secret>"


def test_insecure_profile_is_marked() -> None:
    p = Profile(host="pve1", password=PW, verify_ssl=False)
    assert p.tls == "INSECURE" and p.insecure
    assert "INSECURE" in repr(p) and "NOT verified" in repr(p)
    assert Profile(host="http://pve1", password=PW).tls == "plain-http"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": "root@pam", "token_name": "pvekit", "token_value": TOKEN},
        {"token_name": "root@pam!pvekit", "token_value": TOKEN},
        {"user": "root@pam!pvekit", "token_value": TOKEN},
        {"token_value": f"PVEAPIToken=root@pam!pvekit={TOKEN}"},
        {"user": "root@pam", "token_value": f"PVEAPIToken=root@pam!pvekit={TOKEN}"},
        {"user": "root", "token_name": "pvekit", "token_value": TOKEN},
    ],
)
def test_token_forms(kwargs: dict[str, str]) -> None:
    p = Profile(host="pve1", **kwargs)  # type: ignore[arg-type]
    assert p.is_token
    assert p.token_id == "root@pam!pvekit"
    assert p.identity == "root@pam!pvekit"
    assert p.token_value is not None and reveal(p.token_value) == TOKEN
    assert TOKEN not in repr(p)


@pytest.mark.parametrize(
    ("kwargs", "fieldname"),
    [
        ({"host": ""}, "host"),
        ({"host": "pve1"}, "password"),  # no credentials
        ({"host": "pve1", "password": PW, "token_name": "x", "token_value": TOKEN}, "password"),
        ({"host": "pve1", "token_name": "x"}, "token_value"),
        ({"host": "pve1", "token_value": TOKEN}, "token_name"),
        ({"host": "pve1", "token_value": "PVEAPIToken=root@pam"}, "token_value"),
        (
            {"host": "pve1", "user": "alice@pve", "token_name": "bob@pve!t", "token_value": TOKEN},
            "token_name",
        ),
        ({"host": "pve1", "token_name": "bad name", "token_value": TOKEN}, "token_name"),
        ({"host": "pve1", "user": "a b@pam", "password": PW}, "user"),
        ({"host": "pve1", "password": PW, "fingerprint": "AA:BB"}, "fingerprint"),
        ({"host": "http://pve1", "password": PW, "fingerprint": "AA" * 32}, "fingerprint"),
        ({"host": "pve1", "password": PW, "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"host": "pve1", "password": PW, "timeout": 0}, "timeout"),
        ({"host": "pve1", "password": PW, "timeout": (1, 2, 3)}, "timeout"),
        ({"host": "pve1", "password": PW, "cache": "redis"}, "cache"),
        ({"host": "pve1", "password": PW, "retries": -1}, "retries"),
        ({"host": "pve1", "password": PW, "backoff": -1.0}, "backoff"),
        ({"host": "pve1", "password": PW, "verify_ssl": "yes"}, "verify_ssl"),
        ({"host": "pve1", "token_name": "t", "token_value": TOKEN, "otp": "123456"}, "otp"),
    ],
)
def test_profile_errors_name_the_field(kwargs: dict[str, object], fieldname: str) -> None:
    with pytest.raises(ConfigError) as info:
        Profile(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert f"field {fieldname!r}" in message
    assert PW not in message and TOKEN not in message


def test_fingerprint_is_normalised(tmp_path: Path) -> None:
    fp = "ab" * 32
    p = Profile(host="pve1", password=PW, fingerprint=fp)
    assert p.fingerprint == ":".join(["AB"] * 32)
    assert p.tls == "pinned"
    ca = write(tmp_path / "ca.pem", "dummy")
    assert Profile(host="pve1", password=PW, ca_file=str(ca)).tls == "ca-file"


# -- pvekit config file -----------------------------------------------------------------------


def test_load_pvekit_config(cfg_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_TOKEN", TOKEN)
    write(
        cfg_file,
        f"""
        default: prod
        profiles:
          prod:
            host: https://pve1.example.com:8006
            user: root@pam
            password: {PW}
            fingerprint: "{"AB:" * 31}AB"
            timeout: 10
            connect_timeout: 3
            retries: 5
          lab:
            host: lab.example.com
            user: automation
            realm: pve
            token_name: pvekit
            token_value_env: LAB_TOKEN
            cache: memory
            groups: [everything]
          cmd:
            host: pve3
            user: ops@pve
            password_command: ["{sys.executable}", "-c", "print('from-command')"]
        groups:
          all: [prod, lab]
        """,
    )
    cfg = load_config()
    assert cfg.default == "prod"
    assert cfg.sources == (str(cfg_file),)
    prod = cfg.profile()
    assert prod.name == "prod" and prod.host == "pve1.example.com:8006"
    assert prod.timeout == (3.0, 10.0) and prod.retries == 5 and prod.tls == "pinned"
    assert prod.password is not None and reveal(prod.password) == PW
    lab = cfg.profile("lab")
    assert lab.token_id == "automation@pve!pvekit" and lab.cache == "memory"
    assert repr(lab.token_value) == "<secret from $LAB_TOKEN>"
    assert lab.token_value is not None and reveal(lab.token_value) == TOKEN
    cmd = cfg.profile("cmd")
    assert repr(cmd.password) == "<secret from command>"
    assert cmd.password is not None and reveal(cmd.password) == "from-command"
    assert [p.name for p in cfg.group("all")] == ["prod", "lab"]
    assert [p.name for p in cfg.group("everything")] == ["lab"]
    assert PW not in repr(cfg) and TOKEN not in repr(cfg)
    assert pvekit.load_config is load_config


def test_missing_files_give_empty_config() -> None:
    cfg = load_config()
    assert cfg.profiles == {} and cfg.default is None and cfg.sources == ()
    with pytest.raises(ConfigError, match="no default profile"):
        cfg.profile()
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        cfg.profile("nope")
    with pytest.raises(ConfigError, match="unknown group 'g'"):
        cfg.group("g")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"profiles:\n  a:\n    password: {PW}\n    host: [unclosed\n", "not valid YAML at line"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("profile: {}\n", "unknown top-level key(s) 'profile'"),
        ("profiles: [a, b]\n", "'profiles' must be a mapping"),
        ("groups: [a]\n", "'groups' must be a mapping"),
        ("profiles: {}\ngroups:\n  g: prod\n", "group 'g' must be a list"),
        ("profiles: {}\ngroups:\n  g: []\n", "group 'g' must list at least one"),
        ("profiles: {}\ndefault: prod\n", "'default' names profile 'prod'"),
    ],
)
def test_file_level_errors(cfg_file: Path, text: str, problem: str) -> None:
    write(cfg_file, text)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(cfg_file) in str(info.value)
    assert problem in str(info.value)
    assert PW not in str(info.value)  # the YAML snippet must not be echoed


def test_unreadable_file(cfg_file: Path) -> None:
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cfg_file.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("user: root@pam\n    password: x", "field 'host' - missing"),
        ("host: 42\n    password: x", "field 'host' - must be a string"),
        ("host: pve1\n    pasword: x", "unknown field(s) 'pasword'"),
        ("host: pve1\n    addr: pve2\n    password: x", "give 'host' or 'addr'"),
        (
            "host: pve1\n    password: x\n    password_env: X",
            "give only one of password, password_env",
        ),
        ("host: pve1\n    password_env: 'not a name'", "is not an environment variable name"),
        ("host: pve1\n    password_command: {a: 1}", "must be a command string"),
        ("host: pve1\n    token_value: x", "a token value needs a token name"),
        ("host: pve1\n    token: PVEAPIToken=a@b!c=d\n    token_name: c", "give 'token' or"),
        ("host: pve1\n    password: x\n    verify_ssl: maybe", "field 'verify_ssl'"),
        ("host: pve1\n    password: x\n    insecure: 1", "field 'insecure'"),
        ("host: pve1\n    password: x\n    verify_ssl: true\n    insecure: false", "not both"),
        ("host: pve1\n    password: x\n    groups: 5", "field 'groups'"),
        ("host: pve1\n    user: root@pam\n    realm: pve\n    password: x", "field 'realm'"),
        ("host: pve1\n    password: x\n    timeout: fast", "field 'timeout'"),
        ("host: 'ftp://pve1'\n    password: x", "field 'host'"),
    ],
)
def test_profile_level_errors_are_deferred(cfg_file: Path, body: str, problem: str) -> None:
    write(cfg_file, f"profiles:\n  broken:\n    {body}\n  good:\n    host: pve9\n    password: x\n")
    cfg = load_config()
    assert cfg.profile("good").host == "pve9:8006"  # one broken profile does not stop the rest
    assert "broken" in cfg.names
    with pytest.raises(ConfigError) as info:
        cfg.profile("broken")
    message = str(info.value)
    assert str(cfg_file) in message and "'broken'" in message
    assert problem in message


def test_group_naming_undefined_or_broken_profile(cfg_file: Path) -> None:
    write(
        cfg_file,
        """
        profiles:
          a: {host: pve1, password: x}
          bad: {host: pve2}
        groups:
          g1: [a, ghost]
          g2: [a, bad]
        """,
    )
    cfg = load_config()
    with pytest.raises(ConfigError, match="group 'g1' names profile 'ghost'"):
        cfg.group("g1")
    with pytest.raises(ConfigError, match="profile 'bad'"):
        cfg.group("g2")


def test_secret_sources_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    where = "cfg: profile 'x', field 'password_env'"
    monkeypatch.delenv("PVEKIT_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError, match=r"\$PVEKIT_UNSET_VAR is not set"):
        Secret(env="PVEKIT_UNSET_VAR", where=where).reveal()
    with pytest.raises(ConfigError, match="not found"):
        Secret(command="/nonexistent/pvekit-secret-tool", where=where).reveal()
    failing = [sys.executable, "-c", f"import sys; sys.stderr.write('password={PW}'); sys.exit(3)"]
    with pytest.raises(ConfigError) as info:
        Secret(command=failing, where=where).reveal()
    assert "status 3" in str(info.value) and PW not in str(info.value)
    with pytest.raises(ConfigError, match="printed nothing"):
        Secret(command=[sys.executable, "-c", "pass"], where=where).reveal()
    with pytest.raises(ConfigError, match="empty"):
        Secret(command="", where=where).reveal()
    # a command runs once; its output is remembered (except fresh=True, used for OTP codes)
    counter = tmp_path / "n"
    script = (
        f"import pathlib; p=pathlib.Path({str(counter)!r}); "
        "n=int(p.read_text() if p.exists() else 0)+1; p.write_text(str(n)); print(n)"
    )
    s = Secret(command=[sys.executable, "-c", script], where=where)
    assert s.reveal() == "1" and s.reveal() == "1" and s.reveal(fresh=True) == "2"


def test_encrypted_inline_values(cfg_file: Path) -> None:
    write(
        cfg_file,
        """
        profiles:
          sops: {host: pve1, password: "ENC[AES256_GCM,data:abc=,iv:x,tag:y,type:str]"}
          whole: {host: pve1, token: "ENC[AES256_GCM,data:abc=,type:str]"}
        """,
    )
    cfg = load_config()
    p = cfg.profile("sops")
    assert repr(p.password) == "<secret SOPS-encrypted>"
    with pytest.raises(ConfigError) as info:
        assert p.password is not None
        reveal(p.password)
    assert "SOPS-encrypted" in str(info.value) and "password_command" in str(info.value)
    assert "'sops'" in str(info.value) and "field 'password'" in str(info.value)
    with pytest.raises(ConfigError, match="SOPS-encrypted"):
        cfg.profile("whole")


# -- pvetui config file -----------------------------------------------------------------------


def test_pvetui_profiles_and_groups(tui_file: Path, cfg_file: Path) -> None:
    write(
        tui_file,
        f"""
        profiles:
          home:
            addr: https://192.168.1.10:8006
            user: root
            password: {PW}
            realm: pam
            insecure: true
            groups: [homelab]
            ssh_user: root
          office:
            addr: https://office.example:8006/
            user: tui
            realm: pve
            token_id: tui
            token_secret: {TOKEN}
            groups: [homelab, work]
          shadowed:
            addr: https://old.example
            user: root
            password: old
        default_profile: office
        debug: true
        key_bindings: {{menu: m}}
        theme: {{name: default}}
        """,
    )
    write(cfg_file, "profiles:\n  shadowed: {host: new.example, password: new}\n")
    cfg = load_config()
    assert cfg.sources == (str(cfg_file), str(tui_file))
    home = cfg.profile("home")
    assert home.host == "192.168.1.10:8006" and home.user == "root@pam"
    assert home.tls == "INSECURE" and "(pvetui)" in home.source
    assert home.password is not None and reveal(home.password) == PW
    office = cfg.profile("office")
    assert office.token_id == "tui@pve!tui"
    assert cfg.default == "office"
    assert [p.name for p in cfg.group("homelab")] == ["home", "office"]
    assert [p.name for p in cfg.group("work")] == ["office"]
    assert cfg.profile("shadowed").host == "new.example:8006"  # pvekit's own wins


def test_pvetui_legacy_layout_and_aggregate(tui_file: Path) -> None:
    write(tui_file, f"addr: https://pve.example.com:8006\nuser: root\npassword: {PW}\nrealm: pam\n")
    cfg = load_config()
    assert cfg.profile("default").host == "pve.example.com:8006"
    assert cfg.default == "default"  # the only profile
    write(
        tui_file,
        "profiles:\n  a: {addr: 'https://a', user: root, password: x, aggregate: agg}\n",
    )
    assert [p.name for p in load_config().group("agg")] == ["a"]


def test_pvetui_encrypted_values(tui_file: Path) -> None:
    write(
        tui_file,
        """
        profiles:
          sops:
            addr: https://pve1:8006
            user: root
            password: ENC[AES256_GCM,data:Zm9v,iv:aXY=,tag:dGFn,type:str]
          age:
            addr: https://pve2:8006
            user: root
            token_id: tui
            token_secret: "age1:YWdlLWVuY3J5cHRpb24="
          addr_encrypted:
            addr: ENC[AES256_GCM,data:Zm9v,type:str]
            user: root
            password: x
          both:
            addr: https://pve3
            user: root
            password: x
            token_id: t
            token_secret: y
        sops:
          age: [{recipient: age1xyz}]
          version: 3.9.0
        """,
    )
    cfg = load_config()
    sops = cfg.profile("sops")
    with pytest.raises(ConfigError) as info:
        assert sops.password is not None
        reveal(sops.password)
    assert "SOPS-encrypted" in str(info.value) and "pvetui profile 'sops'" in str(info.value)
    age = cfg.profile("age")
    with pytest.raises(ConfigError, match="age-encrypted"):
        assert age.token_value is not None
        reveal(age.token_value)
    with pytest.raises(ConfigError, match="field 'addr' - the value is SOPS-encrypted"):
        cfg.profile("addr_encrypted")
    with pytest.raises(ConfigError, match="both a password and a token"):
        cfg.profile("both")


def test_pvetui_file_errors(tui_file: Path) -> None:
    write(tui_file, "profiles: [1, 2]\n")
    with pytest.raises(ConfigError, match="'profiles' must be a mapping"):
        load_config()
    write(tui_file, "profiles:\n  x: {user: root, password: p}\n")
    with pytest.raises(ConfigError, match="field 'addr' - missing"):
        load_config().profile("x")


# -- environment ------------------------------------------------------------------------------


def test_env_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXMOX_HOST", "pve-env.example:8443")
    monkeypatch.setenv("PROXMOX_USER", "svc@pve")
    monkeypatch.setenv("PROXMOX_TOKEN_ID", "svc@pve!ci")
    monkeypatch.setenv("PROXMOX_TOKEN_SECRET", TOKEN)
    monkeypatch.setenv("PROXMOX_VALIDATE_CERTS", "false")
    cfg = load_config()
    env = cfg.profile("env")
    assert cfg.default == "env"
    assert env.host == "pve-env.example:8443" and env.token_id == "svc@pve!ci"
    assert env.tls == "INSECURE"
    assert env.token_value is not None and reveal(env.token_value) == TOKEN
    assert TOKEN not in repr(env)


def test_env_profile_password_and_bad_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXMOX_HOST", "pve1")
    monkeypatch.setenv("PROXMOX_USER", "root@pam")
    monkeypatch.setenv("PROXMOX_PASSWORD", PW)
    env = load_config().profile("env")
    assert env.auth_kind == "password" and env.tls == "verified"
    monkeypatch.setenv("PROXMOX_VALIDATE_CERTS", "perhaps")
    with pytest.raises(ConfigError, match="PROXMOX_VALIDATE_CERTS='perhaps'"):
        load_config().profile("env")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalize_host_raises_only_value_error(text: str) -> None:
    try:
        scheme, hostport, path = normalize_host(text)
    except ValueError:
        return
    assert scheme in (None, "http", "https")
    assert path.endswith("/api2/json")
    assert normalize_host(hostport)[1] == hostport  # normalising twice changes nothing
