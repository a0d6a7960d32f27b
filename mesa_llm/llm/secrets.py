"""Provider secrets: URL credentials stripped, configured key values blanked out of provider text.

Pattern-based redaction (:func:`mesa_llm.llm.errors.redact`) only catches keys shaped like known
providers' (``sk-…``, ``AIza…``, bearer tokens). A provider that echoes a key of another shape in an
error body or an answer would leak it into the recording and the terminal, so the litellm backend
also blanks out the *exact values* it was configured with (:class:`Redactor`): the explicit key and
the environment variables that hold provider keys (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...).

URLs are shown and stored without their secrets (:func:`public_url`): no ``user:password@``, and
the values of query parameters named like credentials (``key``, ``access_token``, ``sig``,
``X-Amz-Signature``, ...) masked, since some servers take their token in the query string.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Final

from mesa_llm.llm.errors import redact

#: What a secret value is replaced with in provider text.
MASK: Final = "***"
#: Values shorter than this are not blanked out: they would mangle ordinary words (and are no keys).
MIN_SECRET_LENGTH: Final = 6
#: Environment variables whose value is a credential: the names litellm reads keys from
#: (``*_API_KEY``, ``*_API_TOKEN``, ``*_ACCESS_KEY*``, ``*_SECRET*``, ``*_TOKEN``, the AWS
#: credentials, ``*_BEARER_TOKEN*``) and other common ones (``*_CREDENTIALS*``, ``*_PAT``,
#: ``*_PASS*``, ``*_PASSWORD*``), also numbered (``OPENAI_API_KEY_2``, ``*_KEY_1``, ``*_TOKEN_3``).
_SECRET_ENV_NAME: Final = re.compile(
    r"""
    (?:(?:^|_)(?:API_?KEY|APIKEY|TOKEN|SECRET|PASSWD|PASSWORD)|_(?:KEY|PAT|PWD|PASS))(?:_?\d+)?$  # the ending
    | API_?KEY | ACCESS_?KEY | SECRET | BEARER_?TOKEN | CREDENTIAL | PASSWORD | PRIVATE_?KEY
    | (?:^|_)PASS | AUTH_?TOKEN | SESSION_?TOKEN
    """,
    re.IGNORECASE | re.VERBOSE,
)
_NOT_SECRETS: Final = frozenset({"true", "false", "none", "null", "yes", "no"})
#: Query parameters whose value is a credential (case-insensitive, anywhere in the name): ``key``,
#: ``api_key``, ``access_token``, ``sig``/``signature`` (Azure SAS, ``X-Amz-Signature``),
#: ``X-Amz-Credential``, ``X-Amz-Security-Token``, ``password``, ``secret``, ``auth``, ...
CREDENTIAL_PARAM: Final = re.compile(
    r"key|token|secret|sig|passw|pwd|pass$|auth|credential|session|^code$", re.IGNORECASE
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable of this name holds a credential (see ``_SECRET_ENV_NAME``)."""
    return _SECRET_ENV_NAME.search(name) is not None


def _query_secrets(query: str) -> list[str]:
    """The values of the credential-like parameters of a URL query string."""
    return [
        value
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True)
        if value and CREDENTIAL_PARAM.search(name)
    ]


def public_url(url: str | None) -> str | None:
    """``url`` as it may be shown or stored: without ``user:password@`` and with the values of
    credential-like query parameters replaced by ``***`` (unchanged when it has neither)."""
    stripped = strip_url_credentials(url)
    if not stripped or "?" not in stripped:
        return stripped
    try:
        parts = urllib.parse.urlsplit(stripped)
    except ValueError:
        return redact(stripped)
    if not parts.query:
        return stripped
    pairs = []
    for piece in parts.query.split("&"):
        name, sep, value = piece.partition("=")
        if sep and value and CREDENTIAL_PARAM.search(urllib.parse.unquote_plus(name)):
            value = MASK
        pairs.append(f"{name}{sep}{value}")
    return urllib.parse.urlunsplit(parts._replace(query="&".join(pairs)))


def url_credentials(url: str | None) -> list[str]:
    """The secret parts of ``url``: its ``user:password@`` (the pair, and the password) and the
    values of its credential-like query parameters (``?access_token=...``), if any."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:  # not a URL (e.g. a bad port): nothing to take apart
        return []
    out = []
    if "@" in parts.netloc:
        if password:
            out.append(f"{username or ''}:{password}")
            out.append(password)
        elif username:
            out.append(username)  # a token given as the user name
    out.extend(_query_secrets(parts.query))
    return out


def strip_url_credentials(url: str | None) -> str | None:
    """``url`` without its ``user:password@`` part (unchanged when it has none, or is not a URL)."""
    if not url or "@" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables that hold credentials (``*_API_KEY``, ``*_TOKEN``, ...)."""
    env = os.environ if environ is None else environ
    return [
        value
        for name, value in env.items()
        if is_secret_name(name) and value.strip().lower() not in _NOT_SECRETS
    ]


class Redactor:
    """Blanks out known secret values (and anything key-shaped) in text from or about a provider."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        unique = {s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_LENGTH}
        # longest first: a password must not be blanked inside its "user:password" pair first
        self._secrets = sorted(unique, key=len, reverse=True)

    @classmethod
    def for_provider(cls, api_key: str | None = None, api_base: str | None = None) -> Redactor:
        """A redactor for the configured key (explicit or from the environment) and URL credentials."""
        return cls([api_key, *environment_secrets(), *url_credentials(api_base)])

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def values(self, text: str) -> str:
        """``text`` with every known secret value replaced by ``***`` (a model's answers: nothing
        else is touched, so ordinary text that merely looks like ``key=...`` survives)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(self, text: str) -> str:
        """``text`` with every known secret value and every key-shaped string replaced by ``***``
        (error messages and anything else shown to people)."""
        return redact(self.values(text))

    def __repr__(self) -> str:  # never shows the values
        return f"Redactor({len(self._secrets)} secrets)"
