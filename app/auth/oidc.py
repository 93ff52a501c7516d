"""Sign-in to the screens through the force's OpenID Connect provider.

The authorization code flow with PKCE (RFC 7636, ``S256``), made with Authlib: its
``AsyncOAuth2Client`` builds the authorization URL (state, nonce, code challenge) and makes
the token request with the code verifier; the ID token is verified with joserfc (the JOSE
library Authlib itself uses) against the provider's JWKS, and its claims are checked with
Authlib's ``CodeIDToken`` (``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``,
``at_hash``). Only the configured asymmetric algorithms are accepted, so ``alg: none`` and
HMAC are refused before any signature check.

The provider's configuration (``{issuer}/.well-known/openid-configuration``) and its keys
are fetched at first use, with a timeout, and kept; the keys are fetched again when an ID
token names a key that is not among them (the provider has rotated its keys). A new fetch
can only be caused by an ID token that came from the token endpoint in exchange for a
one-time code, so it needs no rate limit of its own.

The claims name the role, agency, areas and schools exactly as a bearer JWT's do
(``app.auth.jwt.principal_from_claims``). Nothing here logs or returns a token, a code or
a claim: an error carries a fixed reason only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from app.auth.jwt import ALGORITHMS_BY_KEY_TYPE, TokenError, principal_from_claims
from app.auth.principal import Principal
from app.config import Settings

# Authlib 1.9 prefers the httpx2 package and, without it, warns at import (on stderr, for
# every command) that httpx is deprecated. The service uses httpx, which it depends on.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

WELL_KNOWN = "/.well-known/openid-configuration"
# Subjects longer than this are refused: the principal id is stored with every session.
MAX_SUBJECT_LENGTH = 190


class OidcError(Exception):
    """The sign-in failed. ``reason`` is fixed text for the log; never a token or claim."""

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True when the provider could not be reached or answered nonsense (not the
        # person's fault: try again later).
        self.unavailable = unavailable


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    redirect_url: str
    client_secret: str | None = None
    scopes: str = "openid"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    timeout_seconds: float = 5.0
    leeway_seconds: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url):
            return None
        secret = settings.oidc_client_secret
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            redirect_url=settings.oidc_redirect_url,
            client_secret=secret.get_secret_value() if secret is not None else None,
            scopes=settings.oidc_scopes,
            algorithms=tuple(settings.oidc_algorithms),
            timeout_seconds=settings.oidc_timeout_seconds,
            leeway_seconds=settings.jwt_leeway_seconds,
        )


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    id_token_expires_at: datetime


@dataclass(frozen=True)
class Started:
    """A sign-in on its way to the provider: what to keep and where to send the browser."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def _signing_keys(jwks: Any) -> KeySet:
    """The JWKS's asymmetric signing keys (encryption and symmetric keys are never used)."""
    listed = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(listed, list):
        raise OidcError("the provider's JWKS is malformed", unavailable=True)
    usable = [
        key
        for key in listed
        if isinstance(key, dict)
        and key.get("use", "sig") == "sig"
        and str(key.get("kty")) in ALGORITHMS_BY_KEY_TYPE
    ]
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise OidcError(
            "the provider's JWKS holds no usable signing key", unavailable=True
        ) from exc


class OidcClient:
    """One provider's client; kept in ``app.state.oidc`` for the life of the process."""

    def __init__(
        self, config: OidcConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        # Tests give a transport that answers for a fake provider; production uses the network.
        self.transport = transport
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> OidcClient | None:
        config = OidcConfig.from_settings(settings)
        return cls(config, transport) if config is not None else None

    # ----------------------------------------------------------------- the provider

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport,
            timeout=self.config.timeout_seconds,
            follow_redirects=False,
        )

    def _oauth(self) -> AsyncOAuth2Client:
        secret = self.config.client_secret
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=secret,
            # A confidential client authenticates with its secret; a public one with PKCE alone.
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.config.scopes,
            redirect_uri=self.config.redirect_url,
            code_challenge_method="S256",
            transport=self.transport,
            timeout=self.config.timeout_seconds,
            follow_redirects=False,
        )

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._http() as http:
                reply = await http.get(url, headers={"Accept": "application/json"})
            reply.raise_for_status()
            return reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the provider's {what} could not be read", unavailable=True) from exc

    async def metadata(self) -> dict[str, Any]:
        """The provider's configuration, fetched once (again only after a failure)."""
        if self._metadata is not None:
            return self._metadata
        url = self.config.issuer.rstrip("/") + WELL_KNOWN
        found = await self._get_json(url, "configuration")
        if not isinstance(found, dict):
            raise OidcError("the provider's configuration is malformed", unavailable=True)
        # OpenID Connect Discovery §4.3: the document must name the issuer we trust.
        if found.get("issuer") != self.config.issuer:
            raise OidcError("the provider's configuration names another issuer", unavailable=True)
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(found.get(name), str):
                raise OidcError(f"the provider's configuration has no {name}", unavailable=True)
        if self.config.issuer.startswith("https://") and not all(
            str(found[name]).startswith("https://")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        ):
            raise OidcError(
                "the provider's configuration names a plain-HTTP endpoint", unavailable=True
            )
        methods = found.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise OidcError("the provider does not support PKCE with S256", unavailable=True)
        self._metadata = found
        return found

    async def _signing_keys(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            self._keys = _signing_keys(await self._get_json(metadata["jwks_uri"], "JWKS"))
        return self._keys

    # ----------------------------------------------------------------- the flow

    async def start(self) -> Started:
        """A new state, nonce and PKCE code verifier, and the provider's URL with them."""
        metadata = await self.metadata()
        state = generate_token(43)
        nonce = generate_token(43)
        code_verifier = generate_token(64)  # RFC 7636 §4.1: 43 to 128 characters
        async with self._oauth() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=code_verifier,
                nonce=nonce,
            )
        return Started(url=str(url), state=state, nonce=nonce, code_verifier=code_verifier)

    async def finish(self, *, code: str, code_verifier: str, nonce: str) -> SignedIn:
        """Exchange the code (with the verifier), verify the ID token, map its claims."""
        metadata = await self.metadata()
        try:
            async with self._oauth() as client:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except OAuthError as exc:
            raise OidcError("the provider refused the code") from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError("the provider's token endpoint failed", unavailable=True) from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the provider returned no ID token")
        claims = await self._verified_claims(id_token, nonce, token.get("access_token"))
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
            raise OidcError("the ID token's subject is unusable")
        try:
            principal = principal_from_claims(claims, id_prefix="oidc")
        except TokenError as exc:
            raise OidcError(str(exc)) from exc
        return SignedIn(principal, datetime.fromtimestamp(claims["exp"], UTC))

    async def _verified_claims(
        self, id_token: str, nonce: str, access_token: object
    ) -> dict[str, Any]:
        registry = JWSRegistry(algorithms=list(self.config.algorithms), strict_check_header=False)
        try:
            try:
                decoded = jwt.decode(id_token, await self._signing_keys(), registry=registry)
            except InvalidKeyIdError:
                keys = await self._signing_keys(refresh=True)  # the provider rotated its keys
                decoded = jwt.decode(id_token, keys, registry=registry)
        except InvalidKeyIdError as exc:
            raise OidcError("the ID token names an unknown signing key") from exc
        except BadSignatureError as exc:
            raise OidcError("the ID token's signature is not valid") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError("the ID token is malformed or its algorithm is not allowed") from exc
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
        if isinstance(access_token, str):
            params["access_token"] = access_token
        checked = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": self.config.issuer},
                "aud": {"essential": True, "value": self.config.client_id},
                "nonce": {"essential": True},
            },
            params,
        )
        try:
            checked.validate(leeway=self.config.leeway_seconds)
        except ExpiredTokenError as exc:
            raise OidcError("the ID token has expired") from exc
        except (InvalidClaimError, MissingClaimError) as exc:
            raise OidcError(f"the ID token's {exc.claim} claim is missing or wrong") from exc
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError("the ID token's claims are not valid") from exc
        return dict(decoded.claims)
