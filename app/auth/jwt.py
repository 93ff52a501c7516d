"""JWT bearer tokens from the force's identity provider.

Only asymmetric algorithms are accepted and only those configured; ``alg: none`` and HMAC
tokens are refused before any signature check (RFC 8725 §3.1-3.2), so a token signed with
the public key as an HMAC secret can never pass. The token's ``alg`` must also fit the key
it names (the key's own ``alg`` when the JWKS declares one, else its key type), so a token
can never make the verifier use a key with an algorithm it was not published for; keys
published for encryption (``use: enc``) are never used. ``exp``, ``iss``, ``aud`` and
``sub`` are required. The role, agency and areas come from the ``triage_role``, ``triage_agency``,
``triage_areas`` and ``triage_source_system`` claims; a school's URNs from ``triage_schools``
(required for agency ``school``: a school token without one is refused; ignored otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK

from app.auth.principal import AGENCIES, MAX_SCHOOLS, ROLES, Principal, is_school_urn
from app.config import Settings

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# The algorithms each JWK key type can verify (RFC 7518 §6, RFC 8037).
ALGORITHMS_BY_KEY_TYPE: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}


class TokenError(Exception):
    """The token is not acceptable; the message names the reason, never the token."""


class _SigningKey:
    """One verification key from the JWKS and the algorithms it may be used with."""

    def __init__(self, jwk: dict[str, Any]) -> None:
        self.key_id: str | None = jwk.get("kid")
        declared = jwk.get("alg")
        family = ALGORITHMS_BY_KEY_TYPE.get(str(jwk.get("kty")), frozenset())
        self.algorithms = family & {declared} if declared is not None else family
        self.key = PyJWK(jwk, declared if declared in family else None).key


def _signing_keys(jwks: dict[str, Any]) -> dict[str | None, _SigningKey]:
    keys: dict[str | None, _SigningKey] = {}
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if str(jwk.get("kty")) not in ALGORITHMS_BY_KEY_TYPE:
            continue  # symmetric ("oct") and unknown key types are never used
        key = _SigningKey(jwk)
        if key.key_id in keys:
            raise ValueError("the JWKS names two signing keys with the same kid")
        keys[key.key_id] = key
    if not keys:
        raise ValueError("the JWKS holds no asymmetric signing key")
    return keys


class JwtVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: dict[str, Any],
        algorithms: list[str],
        leeway_seconds: int = 30,
    ) -> None:
        bad = sorted(set(algorithms) - ASYMMETRIC)
        if bad:
            raise ValueError(
                "only asymmetric JWT algorithms may be configured, not: " + ", ".join(bad)
            )
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway_seconds
        self.keys = _signing_keys(jwks)

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        if not (settings.jwt_issuer and settings.jwt_audience):
            return None
        if settings.jwt_jwks_json:
            jwks = json.loads(settings.jwt_jwks_json)
        elif settings.jwt_jwks_path:
            jwks = json.loads(Path(settings.jwt_jwks_path).read_text(encoding="utf-8"))
        else:
            return None
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks=jwks,
            algorithms=settings.jwt_algorithms,
            leeway_seconds=settings.jwt_leeway_seconds,
        )

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenError("algorithm not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("malformed token")
        key = self.keys.get(kid) if kid is not None else None
        if key is None and len(self.keys) == 1 and kid is None:
            key = next(iter(self.keys.values()))
        if key is None:
            raise TokenError("unknown signing key")
        if alg not in key.algorithms:
            raise TokenError("algorithm does not fit the signing key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("wrong audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("wrong issuer") from exc
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            # PyJWT raises TypeError/ValueError for keys that do not fit the algorithm.
            raise TokenError("invalid token") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any], *, id_prefix: str = "jwt") -> Principal:
    """The principal a verified token's claims name (API bearer JWTs and OIDC ID tokens).

    ``id_prefix`` tells where the principal signed in (``jwt:…`` for a bearer token,
    ``oidc:…`` for a screen session through the OpenID Connect provider).
    """
    role = claims.get("triage_role")
    if role not in ROLES:
        raise TokenError("token carries no valid triage_role")
    agency = claims.get("triage_agency")
    if role == "agency" and agency not in AGENCIES:
        raise TokenError("agency token carries no valid triage_agency")
    areas = claims.get("triage_areas") or []
    if not isinstance(areas, list) or not all(isinstance(a, str) for a in areas):
        raise TokenError("triage_areas must be a list of strings")
    source_system = claims.get("triage_source_system")
    if role == "submitter" and not isinstance(source_system, str):
        raise TokenError("submitter token carries no triage_source_system")
    is_school = role == "agency" and agency == "school"
    schools = (claims.get("triage_schools") or []) if is_school else []
    if is_school and not (
        isinstance(schools, list)
        and 0 < len(schools) <= MAX_SCHOOLS
        and all(is_school_urn(urn) for urn in schools)
    ):
        # Like a key, a school token names the schools (URNs) whose pupils it may see.
        raise TokenError("school token carries no valid triage_schools")
    return Principal(
        id=f"{id_prefix}:{claims['sub']}",
        kind="jwt",
        role=role,
        label=str(claims.get("name_hint", ""))[:0],  # never keep names from tokens
        agency=agency if role == "agency" else None,
        areas=frozenset(areas),
        source_system=source_system if role == "submitter" else None,
        schools=frozenset(schools),
    )
