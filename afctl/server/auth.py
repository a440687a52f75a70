"""Who a request comes from, and what they may do: API keys, JWT bearer tokens and roles.

A request carries `Authorization: Bearer <credential>`:

- an API key (`afk_...`, made by `afctl auth keys create`): checked against the hashes in
  state.db at every request, so a revoked key stops working at once; it has one role in one
  environment;
- a JWT (PyJWT): HS256 signed with the secret in `AFCTL_JWT_SECRET`, or RS256/ES256 signed by a
  key of the JWKS file given with `--jwks`. The algorithm must be on the allow-list of the key
  type configured (no `none`; an HS256 token is never checked against a public key, so a
  public key cannot be used as an HMAC secret), `iss` and `aud` must be the configured ones,
  `exp` is required, and `exp`/`nbf` get a small leeway. The roles come from one claim
  (`afctl_roles` unless `--jwt-roles-claim` says otherwise): a string or a list of strings,
  each `ROLE` (in every environment) or `ENV:ROLE`, or an object `{ENV: ROLE}`.

Roles rank viewer < runner < operator < admin; each may do what the ones before it may. A
principal's role is per environment: the server's environment must be one it holds a role in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.auth.keys import PREFIX, ROLES
from afctl.errors import UsageError
from afctl.server.problems import Problem

if TYPE_CHECKING:
    from afctl.auth.service import AuthService

RANK = {role: rank for rank, role in enumerate(ROLES)}
JWT_SECRET_ENV = "AFCTL_JWT_SECRET"
DEFAULT_ROLES_CLAIM = "afctl_roles"
LEEWAY_S = 30
ASYMMETRIC = ("RS256", "ES256")


@dataclass(frozen=True)
class Principal:
    """Who a request is from: `who` names them in the audit log; `roles` maps environments
    (or `*`, every one) to a role; `key` identifies them for rate limits."""

    who: str
    roles: Mapping[str, str]
    key: str

    def role_in(self, env: str) -> str | None:
        found = [r for e, r in self.roles.items() if e in (env, "*") and r in RANK]
        return max(found, key=RANK.__getitem__) if found else None

    def may(self, role: str, env: str) -> bool:
        held = self.role_in(env)
        return held is not None and RANK[held] >= RANK[role]


ANONYMOUS = Principal("anonymous (--insecure-no-auth)", {"*": "admin"}, "anonymous")


@dataclass
class JwtSettings:
    """How bearer tokens are checked. `secret` enables HS256; `jwks` (a path) RS256/ES256."""

    secret: str | None = None
    jwks: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    roles_claim: str = DEFAULT_ROLES_CLAIM
    leeway_s: float = LEEWAY_S
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def enabled(self) -> bool:
        return self.secret is not None or self.jwks is not None

    def load(self) -> None:
        """Read the JWKS file and check the settings hang together.

        Raises:
            UsageError: the JWKS file cannot be read, or issuer/audience are missing.
        """
        if not self.enabled:
            return
        if not self.issuer or not self.audience:
            raise UsageError("JWT checking needs an issuer and an audience",
                             hint="--jwt-issuer URL --jwt-audience NAME (or AFCTL_JWT_ISSUER, "
                                  "AFCTL_JWT_AUDIENCE)")  # fmt: skip
        if self.jwks is None:
            return
        import jwt

        try:
            data = json.loads(self.jwks.read_text("utf-8"))
            keys = jwt.PyJWKSet.from_dict(data).keys
        except OSError as exc:
            raise UsageError(f"--jwks {self.jwks}: cannot read it: {exc.strerror}") from None
        except (ValueError, jwt.PyJWTError) as exc:
            raise UsageError(
                f"--jwks {self.jwks}: not a usable JWKS ({exc})",
                hint="give a JSON Web Key Set of RSA or EC public keys",
            ) from None
        self._keys = {}
        for key in keys:
            if key.algorithm_name not in ASYMMETRIC:
                continue  # HS keys in a JWKS would let a public file sign tokens: never used
            self._keys[str(key.key_id or "")] = key
        if not self._keys:
            raise UsageError(f"--jwks {self.jwks} has no RS256 or ES256 key")

    def algorithms(self) -> list[str]:
        return (["HS256"] if self.secret else []) + (list(ASYMMETRIC) if self.jwks else [])

    def principal(self, token: str) -> Principal:
        """The principal a token speaks for.

        Raises:
            Problem: 401 for a token that is malformed, forged, expired, for someone else, or
                signed with an algorithm not allowed.
        """
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Problem(401, "the bearer token is not an API key or a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms():
            raise Problem(401, f"tokens signed with {algorithm!r} are not accepted",
                          hint="accepted: " + ", ".join(self.algorithms()))  # fmt: skip
        if algorithm == "HS256":
            key: Any = self.secret
        else:
            jwk = self._keys.get(str(header.get("kid") or "")) or (
                next(iter(self._keys.values())) if len(self._keys) == 1 else None
            )
            if jwk is None or jwk.algorithm_name != algorithm:
                raise Problem(401, "the token's key is not in the JWKS")
            key = jwk.key
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], issuer=self.issuer,
                                audience=self.audience, leeway=self.leeway_s,
                                options={"require": ["exp", "iss", "aud"]})  # fmt: skip
        except jwt.ExpiredSignatureError:
            raise Problem(401, "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Problem(401, "the token is not valid yet (nbf)") from None
        except jwt.InvalidIssuerError:
            raise Problem(401, "the token is from another issuer") from None
        except jwt.InvalidAudienceError:
            raise Problem(401, "the token is for another audience") from None
        except jwt.PyJWTError:
            raise Problem(401, "the token's signature or claims are not valid") from None
        subject = str(claims.get("sub") or "unknown")[:200]
        return Principal(f"jwt:{subject}", roles_of(claims.get(self.roles_claim)), f"jwt:{subject}")


def roles_of(claim: Any) -> dict[str, str]:
    """Environment -> role from a token's roles claim (see the module's documentation)."""
    if isinstance(claim, dict):
        return {str(env): str(role) for env, role in claim.items() if str(role) in RANK}
    items = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    roles: dict[str, str] = {}
    for item in items:
        env, _, role = str(item).rpartition(":")
        env = env or "*"
        if role in RANK and (env not in roles or RANK[role] > RANK[roles[env]]):
            roles[env] = role
    return roles


@dataclass
class Authenticator:
    """Turns a request's credential into a principal."""

    auth: AuthService
    jwt: JwtSettings
    insecure_no_auth: bool = False

    def configured(self) -> bool:
        """Whether anyone could authenticate: JWTs are checked, or an API key is active."""
        if self.jwt.enabled:
            return True
        from afctl.ids import utc_now

        now = utc_now()
        return any(k.state(now) == "active" for k in self.auth.keys())  # noqa: SIM118

    def principal(self, authorization: str | None) -> Principal:
        """Raises Problem (401) when the credential is missing or not accepted."""
        if self.insecure_no_auth:
            return ANONYMOUS
        scheme, _, credential = (authorization or "").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Problem(401, "this API needs a credential: Authorization: Bearer <key or JWT>",
                          hint="make a key with: afctl auth keys create --role viewer",
                          headers={"WWW-Authenticate": 'Bearer realm="afctl"'})  # fmt: skip
        if credential.startswith(PREFIX):
            key = self.auth.check_key(credential)
            if key is None:
                raise Problem(
                    401,
                    "the API key is unknown, revoked or expired",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            return Principal(f"key:{key.name or key.id}", {key.env: key.role}, f"key:{key.id}")
        if not self.jwt.enabled:
            raise Problem(401, "the bearer token is not an API key (afk_...) and this server "
                               "checks no JWTs",
                          headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return self.jwt.principal(credential)


def jwt_settings(
    jwks: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    roles_claim: str | None = None,
) -> JwtSettings:
    """JWT settings from options, falling back on `AFCTL_JWT_*` variables; the HS256 secret
    comes only from `AFCTL_JWT_SECRET` (a secret on a command line leaks into `ps`)."""
    env = os.environ
    jwks = jwks or env.get("AFCTL_JWT_JWKS") or None
    settings = JwtSettings(
        secret=env.get(JWT_SECRET_ENV) or None,
        jwks=Path(jwks) if jwks else None,
        issuer=issuer or env.get("AFCTL_JWT_ISSUER") or None,
        audience=audience or env.get("AFCTL_JWT_AUDIENCE") or None,
        roles_claim=roles_claim or env.get("AFCTL_JWT_ROLES_CLAIM") or DEFAULT_ROLES_CLAIM,
    )
    if settings.secret is not None and len(settings.secret) < 32:
        raise UsageError(f"{JWT_SECRET_ENV} is too short for HS256",
                         hint="use at least 32 random characters")  # fmt: skip
    settings.load()
    return settings
