"""Which servers get the user's provider key: consent, decided where a call gets its credentials.

A provider key (``OPENAI_API_KEY``, ...) goes only to

* the provider's own host (no ``api_base``: litellm's default, or the user's own environment);
* an ``api_base`` the user named: on the command line (``--api-base``), in their own code
  (``LiteLLMChatModel(api_base=...)``, ``MarketModel(api_base=...)``), or chosen by the program
  itself (``--local``'s server);
* an ``api_base`` listed in :data:`ALLOWED_API_BASES_ENV` (comma-separated base URLs; a URL matches
  an entry with the same scheme, host and port whose path is a prefix of its path, segment-wise).

An ``api_base`` that a scenario file, a ``--set``, a sweep spec (factors, conditions) or a recording
named is none of these: its calls go without the key (OpenAI-compatible servers get a placeholder,
which is all a local llama.cpp or vLLM server needs), and a provider that authenticates otherwise
(Anthropic, Bedrock, Vertex, Azure, ...) is refused, since litellm would read its credentials from
the environment. Files travel (shared scenarios, sweep specs, recordings); the key must not follow
them to whatever host they name.
"""

from __future__ import annotations

import os
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

from mesa_llm.llm.secrets import public_url, strip_url_credentials

#: Environment variable: base URLs (comma-separated) the user allows to receive provider keys.
ALLOWED_API_BASES_ENV: Final = "MESA_LLM_ALLOWED_API_BASES"
#: litellm providers that speak the OpenAI API to whatever ``api_base`` says and authenticate with
#: the ``api_key`` they are given (so a placeholder keeps the environment's key at home).
OPENAI_COMPATIBLE_PROVIDERS: Final = frozenset(
    {
        "openai",
        "text-completion-openai",
        "hosted_vllm",
        "ollama",
        "ollama_chat",
        "lm_studio",
        "llamafile",
        "openai_like",
        "custom_openai",
    }
)
#: characters that make URL parsers disagree about the host (``\\``, whitespace, controls)
_AMBIGUOUS: Final = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _origin(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL, or None for anything ambiguous or malformed
    (which then matches nothing: consent is never given to a URL parsers may read differently)."""
    if not url or _AMBIGUOUS.search(url):
        return None
    url = strip_url_credentials(url) or ""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    path = urllib.parse.unquote(parts.path)
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        return None  # a path that climbs is not "under" anything
    normal = posixpath.normpath("/" + "/".join(segments)) if segments else "/"
    return scheme, host, port or (443 if scheme == "https" else 80), normal


def _under(url: tuple[str, str, int, str], base: tuple[str, str, int, str]) -> bool:
    if url[:3] != base[:3]:
        return False
    prefix = base[3].rstrip("/")
    return not prefix or url[3] == prefix or url[3].startswith(prefix + "/")


def allowed_api_bases(environ: Mapping[str, str] | None = None) -> list[str]:
    """The base URLs of :data:`ALLOWED_API_BASES_ENV` (empty entries dropped)."""
    env = os.environ if environ is None else environ
    return [entry.strip() for entry in env.get(ALLOWED_API_BASES_ENV, "").split(",") if entry.strip()]


def api_base_allowed(
    api_base: str, trusted: str | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether ``api_base`` may receive the provider key: it is ``trusted`` (the URL the user named
    themselves, compared without credentials) or under an entry of :data:`ALLOWED_API_BASES_ENV`."""
    if trusted is not None and strip_url_credentials(trusted) == strip_url_credentials(api_base):
        return True
    target = _origin(api_base)
    if target is None:
        return False
    for entry in allowed_api_bases(environ):
        base = _origin(entry)
        if base is not None and _under(target, base):
            return True
    return False


def how_to_allow(api_base: str) -> str:
    """The one-line advice on sending the key to ``api_base`` (shown without its secrets)."""
    shown = public_url(api_base)
    return f"pass --api-base {shown} or list it in {ALLOWED_API_BASES_ENV}"


def is_openai_compatible(model: str, provider: str | None) -> bool:
    """Whether calls of ``model`` (whose litellm provider is ``provider``, when known) authenticate
    only with the ``api_key`` they are given."""
    if provider is not None:
        return provider in OPENAI_COMPATIBLE_PROVIDERS
    head, sep, _ = model.partition("/")
    return bool(sep) and head in OPENAI_COMPATIBLE_PROVIDERS
