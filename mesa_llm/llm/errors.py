"""Chat-call failures: the one error type callers see, and the mapping from provider exceptions.

:func:`classify` turns whatever a backend raised (litellm, the OpenAI SDK, httpx, aiohttp, asyncio,
vcrpy) into an :class:`LLMError` with a ``kind``, a ``retryable`` flag (transient: rate limit,
timeout, connection, 5xx, 408) and a one-line message without secrets or tracebacks, at most
``MAX_MESSAGE_CHARS`` long. It looks at class *names* along each exception's MRO, so it works without
importing litellm.

Deterministic failures are not retryable: any 4xx but 408 and 429, and a 500 whose body says the
request itself is invalid (llama.cpp answers 500 to a ``response_format`` or JSON schema it refuses;
the same request would be refused again), which is reported as ``bad_request``.

A 200 whose body is not a chat completion (an HTML page from a proxy, an empty body, JSON litellm
cannot convert) is ``malformed_response``: not transient (the same server answers the same way),
so it is attempted once, and never reported as the "HTTP 500" litellm labels it with.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any, Final

KINDS: Final = frozenset(
    {
        "authentication",
        "permission",
        "not_found",
        "bad_request",
        "context_window",
        "content_policy",
        "rate_limit",
        "timeout",
        "connection",
        "server",
        "cache_miss",
        "bad_response",
        "malformed_response",
        "budget",
        "replay_divergence",
        "unknown",
    }
)
#: Configuration problems: retrying or carrying on cannot help, the run should stop.
FATAL_KINDS: Final = frozenset(
    {"authentication", "permission", "not_found", "cache_miss", "replay_divergence"}
)

_SECRET_PATTERNS: Final = (
    re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"),  # OpenAI/Anthropic-style keys
    re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"(?i)\bbearer\s+\S+"),
    # a URL's query parameters named like credentials (?access_token=, &sig=, X-Amz-Signature=, ...)
    re.compile(
        r"(?i)([?&;](?:[\w.%-]*?(?:key|token|secret|sig|passw|pwd|auth|credential|session)[\w.%-]*|pass|code)=)"
        r"([^&#\s'\"<>()\[\]{},]+)"
    ),
    re.compile(r"(?i)(\b(?:api[_-]?)?key=|\btoken=)([^&\s]+)"),
    re.compile(r"(?<=://)[^/\s@]+(?=@)"),  # user:password@ in a URL
)
#: Longest recorded or printed error message (a provider's error body can be anything).
MAX_MESSAGE_CHARS: Final = 400


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` without any Python traceback it carries, on one line, at most ``limit`` characters."""
    head, traceback, tail = text.partition("Traceback (most recent call last)")
    if traceback and not head.strip():  # only a traceback: its last line names the exception
        head = next((line for line in reversed(tail.splitlines()) if line.strip()), "error")
    text = " ".join(head.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact(text: str) -> str:
    """Blank out anything that looks like an API key or bearer token."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}***" if m.re.groups == 2 else "***", text)
    return text


class LLMError(Exception):
    """A chat call that failed for good (after retries when transient)."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        kind: str,
        attempts: int = 1,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown LLMError kind {kind!r}; expected one of {sorted(KINDS)}")
        super().__init__(message)
        self.message = message
        self.model = model
        self.kind = kind
        self.attempts = attempts
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the provider asked us to wait, when it said so
        #: wall time from the first send to the final failure, and each attempt's, when timed
        self.latency_s: float | None = None
        self.attempt_latencies_s: list[float] = []

    @property
    def fatal(self) -> bool:
        """True for configuration problems (bad key, no access, unknown model, cassette miss)."""
        return self.kind in FATAL_KINDS

    def __str__(self) -> str:
        message = one_line(redact(self.message))  # one line, bounded, never a traceback
        text = message if message.startswith(self.model) else f"{self.model}: {message}"
        return text + (f" (after {self.attempts} attempts)" if self.attempts > 1 else "")

    def __repr__(self) -> str:
        return f"LLMError(kind={self.kind!r}, model={self.model!r}, message={str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only arguments: pickle (multiprocessing sweeps) needs to be told how to rebuild.
        return (_rebuild, (self.message, self.__dict__.copy()))


def _rebuild(message: str, state: dict[str, Any]) -> LLMError:
    err = LLMError(message, model=state["model"], kind=state["kind"])
    err.__dict__.update(state)
    return err


# --- classification --------------------------------------------------------------------------

_TIMEOUT_NAMES: Final = frozenset(
    {
        "Timeout",
        "APITimeoutError",
        "TimeoutError",
        "TimeoutException",
        "ReadTimeout",
        "WriteTimeout",
        "ConnectTimeout",
        "PoolTimeout",
        "ServerTimeoutError",
    }
)
_CONNECTION_NAMES: Final = frozenset(
    {
        "APIConnectionError",
        "ConnectError",
        "ConnectionError",
        "RemoteProtocolError",
        "ReadError",
        "ClientConnectionError",
        "ClientConnectorError",
        "ServerDisconnectedError",
    }
)
_SERVER_NAMES: Final = frozenset(
    {"InternalServerError", "ServiceUnavailableError", "BadGatewayError", "APIError"}
)
_BAD_REQUEST_NAMES: Final = frozenset(
    {"BadRequestError", "UnsupportedParamsError", "UnprocessableEntityError", "InvalidRequestError"}
)
_BAD_RESPONSE_NAMES: Final = frozenset(
    {"APIResponseValidationError", "JSONSchemaValidationError", "JSONDecodeError"}
)
_CASSETTE_MISS_NAME: Final = "CannotOverwriteExistingCassetteException"
#: an answer longer than the client reads (`mesa_llm.llm.http1.AnswerTooLarge`)
_ANSWER_TOO_LARGE: Final = "AnswerTooLarge"
# SDKs report a key that was never configured as a generic (status 500) client error.
_NO_KEY_PATTERN: Final = re.compile(
    r"missing credentials|api_key client option must be set|no api key|api key (?:is )?not (?:set|found)",
    re.IGNORECASE,
)
#: What a 500's body says when the request itself was refused (local servers use 500 for that).
_INVALID_REQUEST_500: Final = re.compile(
    r"\binvalid\b|\bunsupported\b|not supported|response_format|\bschemas?\b|\bgrammar\b",
    re.IGNORECASE,
)
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504, 529})

_PLAIN: Final[dict[str, str]] = {
    "authentication": "authentication failed{http}: check the API key for this provider",
    "no_key": "no API key configured: pass api_key or set the provider's key variable ({detail})",
    "permission": "permission denied{http}: this API key has no access to the model",
    "not_found": "model or endpoint not found{http}: check the model name and api_base",
    "context_window": "context window exceeded{http}: the prompt is too long for this model",
    "content_policy": "refused by the provider's content policy{http}",
    "rate_limit": "rate limited by the provider{http}",
    "timeout": "request timed out{http}",
    "connection": "could not reach the provider: {detail}",
    "server": "provider server error{http}: {detail}",
    "cache_miss": (
        "no recorded answer for this request in the cassette "
        "(replay never calls the network; re-record the cassette to add it)"
    ),
    "bad_request": "bad request{http}: {detail}",
    "bad_response": "unusable answer from the provider: {detail}",
    "malformed_response": "malformed answer from the provider (not a chat completion): {detail}",
    "budget": "budget exceeded: {detail}",
    "unknown": "chat call failed: {detail}",
}


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its ``__cause__``/``__context__`` ancestors, without cycles."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 32:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _mro_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status_code(exc: BaseException) -> int | None:
    for candidate in (getattr(exc, "status_code", None), getattr(exc, "status", None)):
        if isinstance(candidate, int) and 100 <= candidate < 600:
            return candidate
    return None


def _detail(exc: BaseException) -> str:
    """A short, single-line, secret-free description of ``exc``."""
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    # litellm stacks prefixes: "litellm.BadRequestError: BadRequestError: OpenAIException - ..."
    text = re.sub(r"^(?:litellm\.)?\w+(?:Error|Exception|Timeout):\s*", "", text)
    text = re.sub(r"^(?:\w+Error|\w+Exception)\s*[-:]\s*", "", text)
    text = re.sub(r"^OpenAIException\s*-\s*", "", text)
    return one_line(redact(text), 200)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait a provider asked for (``retry-after-ms`` / ``retry-after`` headers) anywhere in the chain."""
    for link in _chain(exc):
        for headers in (
            getattr(link, "headers", None),
            getattr(getattr(link, "response", None), "headers", None),
        ):
            if not headers or not hasattr(headers, "get"):
                continue
            try:
                millis = headers.get("retry-after-ms")
                seconds = headers.get("retry-after")
            except Exception:  # exotic header containers: ignore rather than fail classification
                continue
            if millis is not None:
                parsed = _parse_retry_after(str(millis))
                if parsed is not None:
                    return parsed / 1000.0
            if seconds is not None:
                parsed = _parse_retry_after(str(seconds))
                if parsed is not None:
                    return parsed
    return None


def _is_cassette_miss(chain: list[BaseException]) -> bool:
    for link in chain:
        if _CASSETTE_MISS_NAME in _mro_names(link):
            return True
        if "Can't overwrite existing cassette" in str(link):
            return True
    return False


def _connection_detail(chain: list[BaseException]) -> str:
    """The most specific description of a connection failure (the deepest cause says the most)."""
    for link in reversed(chain):
        if _mro_names(link) & (_CONNECTION_NAMES | {"OSError"}):
            return _detail(link)
    return _detail(chain[0])


#: What litellm says when a 200's body is no chat completion (it labels these status 500).
_MALFORMED_MARKERS: Final = (
    "Empty or invalid response from LLM endpoint",
    "Invalid response object",
    "provider returned a response with no 'choices'",
)


def _malformed_detail(chain: list[BaseException]) -> str | None:
    """What was wrong with an unparsable answer, or None when ``chain`` is no such failure."""
    texts = [str(link) for link in chain]
    if not any(m in t for t in texts for m in _MALFORMED_MARKERS) and not any(
        "JSONDecodeError" in _mro_names(link) for link in chain
    ):
        return None
    joined = " ".join(texts)
    if re.search(r"Received: '\s*<", joined) or re.search(r"(?i)<(?:!doctype|html)", joined):
        return "an HTML page"
    if any("JSONDecodeError" in _mro_names(link) for link in chain) or "Received: ''" in joined:
        return "an empty or non-JSON body"
    if "no 'choices'" in joined:
        return "no 'choices' in the answer"
    # litellm's "Invalid response object <traceback>": the deepest cause says what did not convert
    return _detail(chain[-1])


def _kind_of(exc: BaseException, chain: list[BaseException]) -> tuple[str, bool]:
    """(kind, retryable) for one exception; subclasses are tested before their bases."""
    names = _mro_names(exc)
    status = _status_code(exc)
    chain_names: set[str] = set().union(*(_mro_names(link) for link in chain[1:]))
    if status in (401, 403):  # whatever class an SDK picked (401 bodies often say "invalid_request")
        return _kind_of_status(status)
    if "ContextWindowExceededError" in names:  # a BadRequestError subclass: test it first
        return "context_window", False
    if "ContentPolicyViolationError" in names:
        return "content_policy", False
    if "AuthenticationError" in names:
        return "authentication", False
    if "PermissionDeniedError" in names:
        return "permission", False
    if "NotFoundError" in names:
        return "not_found", False
    if "RateLimitError" in names:
        return "rate_limit", True
    if "BudgetExceededError" in names:
        return "budget", False
    if names & _TIMEOUT_NAMES:  # before connection: APITimeoutError subclasses APIConnectionError
        return "timeout", True
    if names & _BAD_REQUEST_NAMES:
        return "bad_request", False
    if names & _BAD_RESPONSE_NAMES:
        return "bad_response", False
    if names & _SERVER_NAMES and status in (None, 500) and chain_names & _CONNECTION_NAMES:
        # litellm reports "connection refused" as InternalServerError("Connection error.")
        return "connection", True
    if names & _CONNECTION_NAMES:
        return "connection", True
    if status is not None:
        return _kind_of_status(status)
    if names & _SERVER_NAMES:
        return "server", True
    return "unknown", False


def _kind_of_status(status: int) -> tuple[str, bool]:
    if status == 401:
        return "authentication", False
    if status == 403:
        return "permission", False
    if status == 404:
        return "not_found", False
    if status == 408:
        return "timeout", True
    if status == 429:
        return "rate_limit", True
    if status in _TRANSIENT_STATUS or status >= 500:
        return "server", True
    if 400 <= status < 500:
        return "bad_request", False
    return "unknown", False


def classify(exc: BaseException, model: str) -> LLMError:
    """Map any exception from a chat call to an :class:`LLMError` (kind, retryable, clean message)."""
    if isinstance(exc, LLMError):
        return exc
    chain = _chain(exc)
    status = _status_code(exc)
    template = None
    malformed = _malformed_detail(chain) if status in (None, 200, 500) else None
    too_large = next((link for link in chain if _ANSWER_TOO_LARGE in _mro_names(link)), None)
    if _is_cassette_miss(chain):
        kind, retryable = "cache_miss", False
    elif too_large is not None:  # the same server would send it again: not transient
        kind, retryable, status = "bad_response", False, None
    elif malformed is not None:
        kind, retryable = "malformed_response", False
    elif status in (None, 500) and any(_NO_KEY_PATTERN.search(str(link)) for link in chain):
        kind, retryable, template = "authentication", False, "no_key"
    else:
        kind, retryable = _kind_of(exc, chain)
        if kind == "server" and status == 500 and _INVALID_REQUEST_500.search(str(exc)[:4000]):
            kind, retryable = "bad_request", False  # deterministic: resending gets the same 500
    if kind in ("connection", "cache_miss", "malformed_response") or template or (status is not None and status < 400):
        status = None  # litellm labels client-side failures 500; don't claim an HTTP answer
    # litellm gives client-side timeouts status 408 too: only say "HTTP" for real answers
    http = f" (HTTP {status})" if status is not None and kind != "timeout" else ""
    if too_large is not None:
        detail = _detail(too_large)
    else:
        detail = _connection_detail(chain) if kind == "connection" else malformed or _detail(exc)
    message = _PLAIN[template or kind].format(http=http, detail=detail)
    return LLMError(
        message,
        model=model,
        kind=kind,
        status_code=status,
        retryable=retryable,
        retry_after=retry_after_seconds(exc) if retryable else None,
    )
