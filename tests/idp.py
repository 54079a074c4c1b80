"""A fake, Keycloak-shaped OpenID Connect identity provider for tests and demos.

:class:`FakeKeycloak` runs a real HTTP(S) server on ``127.0.0.1`` (random port)
that serves a realm's discovery document, realm info and JWKS the way Keycloak
does (RS256 signing keys with ``x5c`` certificates plus one ``RSA-OAEP``
encryption key), mints Keycloak-like access tokens, rotates keys and can be
switched at any time into fault modes (:class:`Mode`) that mimic broken or
hostile upstreams: WAF blocks, 4xx/5xx, hangs, malformed bodies, redirects
and dropped connections. Every request is recorded as a :class:`RecordedRequest`.

RSA key generation is slow, so keys come from a lazily grown module-level pool
shared by all instances: two instances therefore publish the same kids until
one of them rotates. Use :func:`generate_rsa_key` for a fresh, unpublished key.

Only stdlib, ``cryptography`` and PyJWT (``jwt.encode``; 2.0 – 2.15) are used.
"""

from __future__ import annotations

import base64
import datetime
import enum
import hashlib
import json
import socket
import ssl
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["FakeKeycloak", "Mode", "RecordedRequest", "closed_port_url", "generate_rsa_key"]

SigningKey = Union[rsa.RSAPrivateKey, bytes, str]  # noqa: UP007 - runtime alias on 3.10


class Mode(str, enum.Enum):
    """Behaviour of the JWKS (certs) endpoint. Discovery is always served normally."""

    OK = "ok"
    WAF = "waf"  # 403 HTML when User-Agent is missing or starts with "Python-urllib"
    FORBIDDEN = "forbidden"  # 403 for everyone
    NOT_FOUND = "not_found"  # 404
    SERVER_ERROR = "server_error"  # 500
    HANG = "hang"  # wait up to hang_seconds (or until stop()), then 200 + JWKS
    MALFORMED = "malformed"  # 200 application/json, body is not JSON
    EMPTY = "empty"  # 200 {"keys": []}
    REDIRECT = "redirect"  # 302 to redirect_to
    CLOSE = "close"  # close the connection without any HTTP response
    DRIP = "drip"  # 200 headers at once, then the body one byte every drip_seconds (a slow-loris IdP)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. ``status`` is 0 when no response was sent (CLOSE)."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    monotonic: float


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """Generate a fresh RSA private key (never taken from the shared pool)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def closed_port_url() -> str:
    """Return a certs URL on a loopback port that was just free (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/realms/demo/protocol/openid-connect/certs"


_POOL: list[rsa.RSAPrivateKey] = []
_POOL_LOCK = threading.Lock()


def _pool_key(index: int) -> rsa.RSAPrivateKey:
    with _POOL_LOCK:
        while len(_POOL) <= index:
            _POOL.append(generate_rsa_key())
        return _POOL[index]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _thumbprint(key: rsa.RSAPrivateKey) -> str:
    """RFC 7638 JWK thumbprint (43 base64url chars, like Keycloak kids)."""
    numbers = key.public_key().public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _self_signed_der(key: rsa.RSAPrivateKey, common_name: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


# cryptography looks the datetime type up once, on first use; freezegun swaps ``datetime.datetime``, so a first
# certificate built while a test froze time made every later one fail ("not an instance of 'FakeDatetime'"):
# the IdP then dropped the connection of every request for a JWKS with a new key. Build one now.
_self_signed_der(_pool_key(1), "warm-up")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    idp: FakeKeycloak

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "FakeKeycloak/1.0"
    sys_version = ""
    timeout = 10

    def setup(self) -> None:
        self.server.idp._track_thread()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.idp._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.idp._handle(self, head=True)

    def reply(
        self, status: int, body: bytes, content_type: str, head: bool, extra: dict[str, str] | None = None
    ) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", (extra or {}).pop("Cache-Control", "no-cache"))
        self.send_header("Connection", "close")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.wfile.flush()


_HTML = "text/html;charset=utf-8"
_JSON = "application/json"


class FakeKeycloak:
    """A Keycloak-like realm served over real HTTP(S) on 127.0.0.1."""

    def __init__(
        self, realm: str = "demo", client_id: str = "acme-web", ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.realm = realm
        self.client_id = client_id
        self.audience = "acme-api"  # the API's client id, added to aud by an Audience mapper
        self.ssl_context = ssl_context
        self.subject = str(uuid.uuid4())
        self.session_id = str(uuid.uuid4())
        self.hang_seconds: float = 2.0
        self.redirect_to: str | None = None
        self.cache_control: str = "no-cache"  # Cache-Control sent with the JWKS (Keycloak: no-cache)
        self.etags: bool = False  # send ETag with the JWKS and answer If-None-Match with 304
        self.jwks_body: bytes | None = None  # serve this body (200, application/json) instead of the JWKS
        self.drip_seconds: float = 0.25
        #: The public base URL tokens and the discovery document name (Keycloak's KC_HOSTNAME), e.g.
        #: "https://sso.example.com"; None: the URL it is reached by. The back-channel URLs (jwks_uri,
        #: as with hostname-backchannel-dynamic) always use the URL it is reached by.
        self.frontend: str | None = None
        self.discovery_issuer: str | None = None  # the discovery document's "issuer" when it should lie
        self.discovery_jwks_uri: str | None = None  # the discovery document's "jwks_uri" when it should differ
        self.discovery_delay: float = 0.0  # seconds the discovery document waits (bounded by stop())
        self.discovery_status: int = 200  # 403 or 500: the discovery document fails too (the whole IdP is down)
        self._lock = threading.RLock()
        self._mode = Mode.OK
        self._requests: list[RecordedRequest] = []
        self._keys: dict[str, rsa.RSAPrivateKey] = {}  # every signing key ever used
        self._published: list[str] = []
        self._jwk_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._stop_event = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._handlers: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
        self._port: int | None = None
        self._enc_key = _pool_key(1)
        self._next_pool = 2
        self._active_kid = self._add_signing_key(_pool_key(0))

    # -- lifecycle -------------------------------------------------------
    def start(self, port: int = 0) -> FakeKeycloak:
        """Serve on ``port`` (default: a free one; the soak restarts a stopped IdP on its old port)."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("FakeKeycloak already started")
            self._stop_event = threading.Event()
            server = _Server(("127.0.0.1", port), _Handler)
            server.idp = self
            if self.ssl_context is not None:
                server.socket = self.ssl_context.wrap_socket(
                    server.socket, server_side=True, do_handshake_on_connect=False
                )
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"FakeKeycloak:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            self._stop_event.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=2)
        deadline = time.monotonic() + 2
        for handler in list(self._handlers):
            if handler is not threading.current_thread():
                handler.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> FakeKeycloak:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track_thread(self) -> None:
        self._handlers.add(threading.current_thread())

    # -- URLs ------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeKeycloak not started")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def issuer(self) -> str:
        return f"{self.frontend or self.base_url}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/realms/{self.realm}/protocol/openid-connect/certs"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/realms/{self.realm}/.well-known/openid-configuration"

    def discovery_requests(self) -> list[RecordedRequest]:
        """Requests for the realm's discovery document."""
        path = f"/realms/{self.realm}/.well-known/openid-configuration"
        return [r for r in self.requests if urlsplit(r.path).path == path]

    # -- state -----------------------------------------------------------
    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, value: Mode | str) -> None:
        with self._lock:
            self._mode = Mode(value)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def jwks_requests(self) -> list[RecordedRequest]:
        """Requests for the realm's certs path (not the REDIRECT target)."""
        certs = f"/realms/{self.realm}/protocol/openid-connect/certs"
        return [r for r in self.requests if urlsplit(r.path).path == certs]

    def reset(self) -> None:
        """Back to Mode.OK with no recorded requests; keys are kept."""
        with self._lock:
            self._mode = Mode.OK
            self._requests.clear()
        self.cache_control = "no-cache"
        self.etags = False
        self.jwks_body = None
        self.drip_seconds = 0.25
        self.discovery_issuer = None
        self.discovery_jwks_uri = None
        self.discovery_delay = 0.0
        self.discovery_status = 200

    # -- keys ------------------------------------------------------------
    def _add_signing_key(self, key: rsa.RSAPrivateKey) -> str:
        kid = _thumbprint(key)
        self._keys[kid] = key
        if kid not in self._published:
            self._published.append(kid)
        return kid

    @property
    def active_kid(self) -> str:
        with self._lock:
            return self._active_kid

    def rotate(self, keep_old: bool = True) -> str:
        """Make a new RS256 key active; keep the old ones published if keep_old."""
        key = _pool_key(self._next_pool)
        with self._lock:
            self._next_pool += 1
            if not keep_old:
                self._published.clear()
            self._active_kid = self._add_signing_key(key)
            return self._active_kid

    def signing_key_pem(self, kid: str | None = None) -> bytes:
        with self._lock:
            key = self._keys[kid or self._active_kid]
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def _jwk(self, key: rsa.RSAPrivateKey, use: str, alg: str) -> dict[str, Any]:
        kid = _thumbprint(key)
        cached = self._jwk_cache.get((kid, use))
        if cached is None:
            numbers = key.public_key().public_numbers()
            der = _self_signed_der(key, self.realm)
            cached = {
                "kid": kid,
                "kty": "RSA",
                "alg": alg,
                "use": use,
                "n": _b64url_uint(numbers.n),
                "e": _b64url_uint(numbers.e),
                "x5c": [base64.b64encode(der).decode("ascii")],
                "x5t": _b64url(hashlib.sha1(der).digest()),
                "x5t#S256": _b64url(hashlib.sha256(der).digest()),
            }
            self._jwk_cache[(kid, use)] = cached
        return {**cached, "x5c": list(cached["x5c"])}

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: the RSA-OAEP enc key first (as Keycloak often does), then sig keys."""
        with self._lock:
            keys = [self._jwk(self._enc_key, "enc", "RSA-OAEP")]
            keys += [self._jwk(self._keys[kid], "sig", "RS256") for kid in self._published]
        return {"keys": keys}

    # -- tokens ----------------------------------------------------------
    def mint(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        expires_in: int = 300,
        now: int | None = None,
        key: SigningKey | None = None,
    ) -> str:
        """Mint a Keycloak-like RS256 access token.

        ``claims`` override the defaults; a ``None`` value removes the claim.
        ``kid`` picks one of this realm's signing keys (default: active). With
        ``key`` the token is signed by that foreign key while the header claims
        ``kid`` (default: the active kid).
        """
        issued = int(time.time()) if now is None else int(now)
        with self._lock:
            header_kid = kid or self._active_kid
            signer: SigningKey = key if key is not None else self._keys[header_kid]
        payload: dict[str, Any] = {
            "exp": issued + expires_in,
            "iat": issued,
            "auth_time": issued,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": [self.audience, "account"],  # an Audience mapper naming the API, and Keycloak's default
            "sub": self.subject,
            "typ": "Bearer",
            "azp": self.client_id,
            "sid": self.session_id,
            "acr": "1",
            "allowed-origins": ["http://localhost:8000"],
            "realm_access": {"roles": [f"default-roles-{self.realm}", "offline_access", "uma_authorization"]},
            "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
            "scope": "openid email profile",
            "email_verified": True,
            "name": "Alice Liddell",
            "preferred_username": "alice",
            "given_name": "Alice",
            "family_name": "Liddell",
            "email": "alice@example.com",
        }
        for name, value in (claims or {}).items():
            if value is None:
                payload.pop(name, None)
            else:
                payload[name] = value
        token = jwt.encode(payload, signer, algorithm="RS256", headers={"typ": "JWT", "kid": header_kid})
        return token.decode("ascii") if isinstance(token, bytes) else token

    # -- HTTP ------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        iss, oidc = self.issuer, f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.discovery_issuer or iss,
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{oidc}/token",
            "introspection_endpoint": f"{oidc}/token/introspect",
            "userinfo_endpoint": f"{oidc}/userinfo",
            "end_session_endpoint": f"{oidc}/logout",
            "revocation_endpoint": f"{oidc}/revoke",
            "jwks_uri": self.discovery_jwks_uri or self.jwks_url,
            "grant_types_supported": ["authorization_code", "refresh_token", "password", "client_credentials"],
            "response_types_supported": ["code", "none", "id_token", "token", "code id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256", "RS384", "RS512", "ES256", "PS256"],
            "id_token_encryption_alg_values_supported": ["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "client_secret_jwt",
            ],
            "claims_supported": [
                "aud",
                "sub",
                "iss",
                "auth_time",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "email",
                "acr",
            ],
            "scopes_supported": ["openid", "profile", "email", "roles", "offline_access"],
            "code_challenge_methods_supported": ["plain", "S256"],
        }

    def _etag(self) -> str:
        return '"' + hashlib.sha256(json.dumps(self.jwks(), sort_keys=True).encode()).hexdigest()[:16] + '"'

    def _drip(self, h: _Handler, body: bytes) -> None:
        """Headers at once, then one byte per ``drip_seconds`` (bounded by the body and by stop())."""
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", _JSON)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.flush()
        for i in range(len(body)):
            if self._stop_event.wait(self.drip_seconds):
                return
            try:
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
            except OSError:  # the client gave up: that is the point
                return

    def _handle(self, h: _Handler, head: bool) -> None:
        received = time.monotonic()
        path = urlsplit(h.path).path
        realm_path = f"/realms/{self.realm}"
        certs = f"{realm_path}/protocol/openid-connect/certs"
        headers = dict(h.headers.items())
        mode = self.mode if path == certs else Mode.OK
        if path == certs or path == "/elsewhere/certs":
            status = {
                Mode.FORBIDDEN: 403,
                Mode.NOT_FOUND: 404,
                Mode.SERVER_ERROR: 500,
                Mode.REDIRECT: 302,
                Mode.CLOSE: 0,
            }.get(mode, 200)
            user_agent = h.headers.get("User-Agent")
            if mode is Mode.WAF and (not user_agent or user_agent.startswith("Python-urllib")):
                status = 403
            if status == 200 and self.etags and h.headers.get("If-None-Match") == self._etag():
                status = 304
        elif path == realm_path:
            status = 200
        elif path == f"{realm_path}/.well-known/openid-configuration":
            status = self.discovery_status
        else:
            status = 404
        with self._lock:
            self._requests.append(RecordedRequest(h.command, h.path, headers, status, received))

        if status == 0:  # CLOSE: drop the connection without a response
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if status == 403:
            h.reply(403, b"<html><body><h1>Forbidden</h1></body></html>", _HTML, head)
        elif status == 404:
            h.reply(404, b'{"error":"Unable to find matching target resource method"}', _JSON, head)
        elif status == 500:
            h.reply(500, b'{"error":"unknown_error"}', _JSON, head)
        elif status == 302:
            location = self.redirect_to or f"{self.base_url}/elsewhere/certs"
            h.reply(302, b"", _HTML, head, {"Location": location})
        elif status == 304:
            h.reply(304, b"", _JSON, True, {"ETag": self._etag(), "Cache-Control": self.cache_control})
        elif path.endswith("/certs"):
            if mode is Mode.HANG:
                self._stop_event.wait(max(0.0, float(self.hang_seconds)))
            if self.jwks_body is not None and mode in (Mode.OK, Mode.HANG, Mode.WAF, Mode.DRIP):
                body = self.jwks_body
            elif mode is Mode.MALFORMED:
                body = b'{"keys": ['
            elif mode is Mode.EMPTY:
                body = b'{"keys": []}'
            else:
                body = json.dumps(self.jwks()).encode()
            extra = {"Cache-Control": self.cache_control}
            if self.etags:
                extra["ETag"] = self._etag()
            if mode is Mode.DRIP:
                self._drip(h, body)
                return
            h.reply(200, body, _JSON, head, extra)
        elif path == realm_path:
            public = (
                self._keys[self.active_kid]
                .public_key()
                .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            )
            info = {
                "realm": self.realm,
                "public_key": base64.b64encode(public).decode(),
                "token-service": f"{self.issuer}/protocol/openid-connect",
                "account-service": f"{self.issuer}/account",
                "tokens-not-before": 0,
            }
            h.reply(200, json.dumps(info).encode(), _JSON, head)
        else:
            if self.discovery_delay > 0:
                self._stop_event.wait(self.discovery_delay)
            h.reply(200, json.dumps(self.discovery()).encode(), _JSON, head)
