"""Who may call what: every route × every role × every way a credential can be wrong, JWTs of
each accepted kind and of the kinds refused, and a revoked key stopping at once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from afctl.auth.keys import ROLES
from afctl.errors import UsageError
from afctl.server.api import API
from afctl.server.auth import RANK, JwtSettings, roles_of
from afctl.server.core import ServeSettings
from afctl.server.exposure import check_bind
from afctl.server.limits import Limits
from afctl.testing import invoke
from tests.server.conftest import Running, make_key

SECRET = "s" * 40
ISSUER, AUDIENCE = "https://login.example", "afctl"


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256",
          **headers: Any) -> str:  # fmt: skip
    now = int(time.time())
    body = {"sub": "ana", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
            "afctl_roles": ["default:admin"], **(claims or {})}  # fmt: skip
    return jwt.encode(body, key, algorithm=algorithm, headers=headers or None)


SAMPLES: dict[str, dict[str, Any]] = {
    "start": {"json": {"target": "agent/echo", "input": "hi"}},
    "chat_completions": {"json": {"model": "agent/echo",
                                  "messages": [{"role": "user", "content": "hi"}]}},
    "rollback_resource": {"json": {"to": 1}},
    "apply_plan": {"json": {"plan": {}}},
    "create_key": {"json": {"role": "viewer"}},
    "resume": {"json": {}},
    "approve": {"json": {}},
    "deny": {"json": {}},
    "plan": {"json": {"files": {"a.yaml": "apiVersion: afctl/v1\nkind: Model\nmetadata: "
                                          "{name: m}\nspec: {provider: local, model: echo}\n"}}},
    "start_eval": {"json": {"files": {"e.yaml": "kind: Nothing\n"}}},
    "query": {"json": {"sql": "SELECT count(*) FROM runs"}},
    "install_blueprint": {"json": {"ref": "nothing-here"}},
}  # fmt: skip
PARAMS = {"kind": "agent", "name": "noter", "run_id": "01NOSUCHRUN", "session": "s1",
          "key": "nokey", "other": "01NOSUCHRUN", "eval_id": "noeval"}  # fmt: skip


def call(client: Any, endpoint: Any) -> Any:
    path = endpoint.path
    for name, value in PARAMS.items():
        path = path.replace("{" + name + "}", value)
    sample = SAMPLES.get(endpoint.operation_id, {"json": {}} if endpoint.body else {})
    if endpoint.media == "text/event-stream":  # a stream of a run that does not exist: 404
        return client.get(path)
    return client.request(endpoint.method, path, **sample)


@pytest.fixture
def secured(repo: Path):
    settings = ServeSettings(
        port=0,
        workspace=str(repo),
        grace_s=1,
        jwt=JwtSettings(secret=SECRET, issuer=ISSUER, audience=AUDIENCE),
        limits=Limits(rate_per_min=0),  # the matrix makes some 2,000 calls at once
    )
    with Running(settings) as running:
        yield running


def test_every_route_for_every_role_and_every_bad_credential(secured, repo):
    keys = {role: make_key(repo, role) for role in ROLES}
    elsewhere = make_key(repo, "admin", env="staging")
    bad = {
        "no credential": None,
        "unknown key": "afk_" + "x" * 40,
        "not a token": "garbage",
        "expired JWT": token({"exp": int(time.time()) - 3600}),
        "JWT of another algorithm": token(key="k" * 64, algorithm="HS512"),
        "unsigned JWT": token(key="", algorithm="none"),
        "forged JWT": token(key="t" * 40),
        "JWT for another audience": token({"aud": "someone-else"}),
    }
    routes = [e for e in API.endpoints if e.role is not None]
    assert len(routes) > 20
    for endpoint in routes:
        label = f"{endpoint.method} {endpoint.path}"
        for name, credential in bad.items():
            with secured.client(credential) as client:
                answer = call(client, endpoint)
            assert answer.status_code == 401, (label, name, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        with secured.client(elsewhere) as client:
            answer = call(client, endpoint)
        assert answer.status_code == 403, (label, "a key of another environment")
        with secured.client(token({"afctl_roles": ["staging:admin"]})) as client:
            assert call(client, endpoint).status_code == 403, (label, "a JWT for staging")
        for role in ROLES:
            allowed = RANK[role] >= RANK[endpoint.role]
            for credential in (keys[role], token({"afctl_roles": [f"default:{role}"]})):
                with secured.client(credential) as client:
                    answer = call(client, endpoint)
                if allowed:
                    assert answer.status_code not in (401, 403), (label, role, answer.text)
                    assert answer.status_code < 500, (label, role, answer.text)
                else:
                    assert answer.status_code == 403, (label, role, answer.text)
    public = [e for e in API.endpoints if e.role is None]
    with secured.client() as client:
        for endpoint in public:
            assert call(client, endpoint).status_code == 200, endpoint.path


def _jwks(tmp_path: Path) -> tuple[Path, Any, Any]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, private, algorithm in (("r1", rsa_key, "RS256"), ("e1", ec_key, "ES256")):
        jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key()))
        keys.append({**jwk, "kid": kid, "alg": algorithm, "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path, rsa_key, ec_key


def test_jwts_signed_by_a_jwks_key_are_accepted_and_confusions_refused(repo, tmp_path):
    from cryptography.hazmat.primitives import serialization

    path, rsa_key, ec_key = _jwks(tmp_path)
    settings = JwtSettings(jwks=path, issuer=ISSUER, audience=AUDIENCE)
    settings.load()
    with Running(ServeSettings(port=0, workspace=str(repo), jwt=settings)) as running:

        def status(credential: str) -> int:
            with running.client(credential) as client:
                return client.get("/v1/runs").status_code

        assert status(token(key=rsa_key, algorithm="RS256", kid="r1")) == 200
        assert status(token(key=ec_key, algorithm="ES256", kid="e1")) == 200
        assert status(token(key=rsa_key, algorithm="RS256", kid="e1")) == 401  # key of another type
        public_pem = rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # an HS256 token keyed with the RSA public key (the classic confusion); PyJWT will
        # not make one with a PEM key, so it is made by hand
        import base64
        import hashlib
        import hmac

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "r1"}).encode())
        body = b64(
            json.dumps(
                {
                    "sub": "x",
                    "iss": ISSUER,
                    "aud": AUDIENCE,
                    "exp": int(time.time()) + 60,
                    "afctl_roles": "admin",
                }
            ).encode()
        )
        signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
        confused = f"{head}.{body}.{b64(signature)}"
        assert status(confused) == 401
        assert status(token(key=rsa_key, algorithm="RS256", kid="r1",
                            )[:-4] + "AAAA") == 401  # fmt: skip
        later = {"nbf": int(time.time()) + 3600}
        assert status(token(later, key=rsa_key, algorithm="RS256", kid="r1")) == 401
        just_expired = {"exp": int(time.time()) - 5}  # within the leeway
        assert status(token(just_expired, key=rsa_key, algorithm="RS256", kid="r1")) == 200
        assert status(token({"iss": "https://evil"}, key=rsa_key, algorithm="RS256",
                            kid="r1")) == 401  # fmt: skip
        no_role = {"afctl_roles": []}
        assert status(token(no_role, key=rsa_key, algorithm="RS256", kid="r1")) == 403


def test_jwt_settings_are_checked_before_the_server_starts(tmp_path, monkeypatch):
    from afctl.server.auth import jwt_settings

    monkeypatch.setenv("AFCTL_JWT_SECRET", "short")
    with pytest.raises(UsageError, match="too short"):
        jwt_settings(None, ISSUER, AUDIENCE)
    monkeypatch.setenv("AFCTL_JWT_SECRET", SECRET)
    with pytest.raises(UsageError, match="issuer and an audience"):
        jwt_settings()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UsageError, match="not a usable JWKS"):
        jwt_settings(str(tmp_path / "bad.json"), ISSUER, AUDIENCE)
    hs_only = tmp_path / "hs.json"
    hs_only.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}))
    with pytest.raises(UsageError, match="no RS256 or ES256 key"):
        jwt_settings(str(hs_only), ISSUER, AUDIENCE)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_a_roles_claim_of_any_shape_gives_only_known_roles(claim):
    roles = roles_of(claim)
    assert all(isinstance(env, str) and role in RANK for env, role in roles.items())


def test_roles_claim_forms():
    assert roles_of("runner") == {"*": "runner"}
    assert roles_of(["prod:viewer", "staging:admin", "prod:operator"]) == {
        "prod": "operator", "staging": "admin"}  # fmt: skip
    assert roles_of({"prod": "runner", "dev": "root"}) == {"prod": "runner"}


def test_an_address_beyond_this_machine_needs_authentication(repo):
    check_bind("127.0.0.1", auth_configured=False, insecure_no_auth=True)
    with pytest.raises(UsageError, match="no way to authenticate"):
        check_bind("0.0.0.0", auth_configured=False, insecure_no_auth=False)
    with pytest.raises(UsageError, match="only this machine"):
        check_bind("0.0.0.0", auth_configured=True, insecure_no_auth=True)
    check_bind("0.0.0.0", auth_configured=True, insecure_no_auth=False)
    refused = invoke(["serve", "--host", "0.0.0.0", "--port", "0"], cwd=repo)
    assert refused.exit_code == 64 and "no way to authenticate" in refused.stderr
    assert "Traceback" not in refused.stderr
    loose = invoke(["serve", "--host", "0.0.0.0", "--insecure-no-auth"], cwd=repo)
    assert loose.exit_code == 64 and "only this machine" in loose.stderr


def test_insecure_no_auth_serves_this_machine_as_admin(repo):
    settings = ServeSettings(port=0, workspace=str(repo), insecure_no_auth=True)
    with Running(settings) as running, running.client() as client:
        assert client.get("/v1/keys").status_code == 200
        started = client.post("/v1/runs", json={"target": "agent/echo", "input": "hi"})
        assert started.json()["output"] == "hi"
    audit = json.loads(invoke(["audit", "-o", "json"], cwd=repo).stdout)
    assert audit[-1]["who"] == "anonymous (--insecure-no-auth)"
