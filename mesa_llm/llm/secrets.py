"""Provider secrets: URL credentials stripped, configured key values blanked out of provider text.

Pattern-based redaction (:func:`mesa_llm.llm.errors.redact`) only catches keys shaped like known
providers' (``sk-…``, ``AIza…``, bearer tokens). A provider that echoes a key of another shape in an
error body or an answer would leak it into the recording and the terminal, so the litellm backend
also blanks out the *exact values* it was configured with (:class:`Redactor`): the explicit key and
the environment variables that hold provider keys (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...).
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
#: Environment variables whose value is a credential (litellm reads provider keys from such names).
_SECRET_ENV_NAME: Final = re.compile(
    r"(?:API_?KEY|_KEY|_TOKEN|_SECRET|_SECRET_ACCESS_KEY|_PASSWORD|_PASSWD)$", re.IGNORECASE
)
_NOT_SECRETS: Final = frozenset({"true", "false", "none", "null", "yes", "no"})


def url_credentials(url: str | None) -> list[str]:
    """The secret parts of ``url``'s ``user:password@`` (the pair, and the password), if any."""
    if not url or "@" not in url:
        return []
    parts = urllib.parse.urlsplit(url)
    out = []
    if parts.password:
        out.append(f"{parts.username or ''}:{parts.password}")
        out.append(parts.password)
    elif parts.username:
        out.append(parts.username)  # a token given as the user name
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
        if _SECRET_ENV_NAME.search(name) and value.strip().lower() not in _NOT_SECRETS
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
