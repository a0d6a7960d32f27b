"""The litellm chat backend (any provider), credential checks and the server probe.

litellm is imported lazily, on the first call, by :func:`_litellm` — importing it costs seconds and,
unless told otherwise through the environment, downloads a price map, fetches a config and loads
``./.env``. So before the import we ``os.environ.setdefault``:

* ``LITELLM_LOCAL_MODEL_COST_MAP=True`` — use the bundled price map, no download;
* ``LITELLM_MODE=PRODUCTION`` — do not load ``./.env``;
* ``LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True`` — no config fetch.

Retries: litellm gets ``num_retries=0``, which it also passes down as the provider SDK's
``max_retries`` (the OpenAI SDK would otherwise retry twice, silently, and litellm's own retries
multiply that). :mod:`mesa_llm.llm.retry` is the only retry loop: transient failures
only, bounded, with backoff. Verified against the fake server: one HTTP request per attempt.

Transport: for async calls we keep litellm's default aiohttp transport; vcrpy (>= 8.2.1) records
and replays it. ``DISABLE_AIOHTTP_TRANSPORT=True`` in the environment switches litellm to httpx;
cassettes match on method, path and JSON body, so they replay under either transport.

Lean path: ``openai/<model>`` with an ``api_base`` (local servers, proxies) goes through litellm's own
lower layer (:mod:`mesa_llm.llm.direct`: its parameter mapping, request transform, cached SDK client
and transport, response conversion and exception mapping) without ``litellm.acompletion``'s per-call
wrapper, unless litellm callbacks or globals are configured. On a run's own event loop a plain
``http://`` api_base is posted by our own HTTP/1.1 client (:mod:`mesa_llm.llm.http1`: the same
request bytes, keep-alive, timeouts and errors as aiohttp, ~0.3 ms less client CPU per call); https,
proxies and cassette recorders keep aiohttp. Same bodies, answers and errors (tested side by side); about 0.8 ms of client CPU per call (the whole LLM step included: prompts, recording)
instead of ~3.5 ms, the same at 1,000 and 10,000 agents (``benchmarks/bench_llm_scale.py``). ``direct=False`` or
``MESA_LLM_LITELLM_FULL_PATH=1`` turns it off.

Consent: the provider key goes with a call only to the provider's own host, to an ``api_base`` the
caller trusts (``api_base_trusted``, the default for code that names one) or to one the user
allows in ``MESA_LLM_ALLOWED_API_BASES`` (:mod:`mesa_llm.llm.consent`). An ``api_base`` a scenario,
sweep spec or recording named gets a placeholder key (OpenAI-compatible servers), or the model is
refused (providers whose credentials litellm would read from the environment).

Secrets: the API key is passed per call, never stored in litellm's globals, never part of
``repr()``, records or error messages: every answer's text and every error message leaves the
backend with the configured key's exact value blanked out, whatever its shape
(:class:`mesa_llm.llm.secrets.Redactor`), so a provider echoing the key cannot leak it.
``user:password@`` in ``api_base`` is dropped (never sent: the SDK authenticates with the key, and
aiohttp refuses both at once; never recorded or shown). litellm masks authorization headers in its
own debug logs, and we do not turn those logs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import importlib
import json
import logging
import os
import ssl
import threading
import urllib.parse
from contextlib import suppress
from typing import Any, Final

from mesa_llm.llm.cache import ResponseCache
from mesa_llm.llm.consent import api_base_allowed, how_to_allow, is_openai_compatible
from mesa_llm.llm.direct import DirectOpenAI, LeanCompletion, direct_path_applies
from mesa_llm.llm.errors import LLMError, classify, redact
from mesa_llm.llm.limits import ConcurrencyLimiter
from mesa_llm.llm.local_server import request_fields_for
from mesa_llm.llm.retry import AttemptClock, call_with_retries
from mesa_llm.llm.secrets import Redactor, public_url, strip_url_credentials
from mesa_llm.llm.types import ChatRequest, ChatResponse, ToolCall, Usage
from mesa_llm.llm.usage import checked_usage

logger = logging.getLogger(__name__)

LITELLM_ENV_DEFAULTS: Final[dict[str, str]] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
}

#: Providers that speak the OpenAI API to whatever ``api_base`` says (local servers need no key).
OPENAI_COMPATIBLE_PREFIXES: Final = (
    "openai/",
    "hosted_vllm/",
    "ollama/",
    "ollama_chat/",
    "lm_studio/",
    "llamafile/",
    "openai_like/",
    "custom_openai/",
)
#: Sent as the key to an OpenAI-compatible local server when none is configured (the SDK needs one).
PLACEHOLDER_API_KEY: Final = "no-key-required"
#: Extra seconds ``asyncio.timeout`` allows beyond the request timeout litellm enforces itself.
TIMEOUT_MARGIN_S: Final = 0.5

_litellm_module: Any = None  # the litellm module once imported (untyped: mypy never loads it)
_import_lock = threading.Lock()


class _DropLoopChangeNotice(logging.Filter):
    """litellm warns each time its logging worker moves to a new event loop; that is expected here
    (``complete_sync`` and tests run one loop per call) and says nothing actionable."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "event loop changed" not in record.getMessage()


def _litellm() -> Any:
    """Import litellm on first use, with the environment set so the import has no side effects."""
    global _litellm_module
    if _litellm_module is not None:
        return _litellm_module
    with _import_lock:
        if _litellm_module is None:
            for name, value in LITELLM_ENV_DEFAULTS.items():
                os.environ.setdefault(name, value)
            module: Any = importlib.import_module("litellm")
            module.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
            logging.getLogger("LiteLLM").addFilter(_DropLoopChangeNotice())
            _litellm_module = module
    return _litellm_module


def _is_openai_compatible(model: str) -> bool:
    return model.startswith(OPENAI_COMPATIBLE_PREFIXES) or "/" not in model


#: the attributes of a plain dict (``_attr`` of one of these names gives the attribute, as getattr does)
_DICT_ATTRIBUTES = frozenset(dir(dict))


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]`` (litellm objects are both), else ``default``."""
    if obj is None:
        return default
    if type(obj) is dict and name not in _DICT_ATTRIBUTES:  # a provider's JSON (the lean path's answer):
        value = obj.get(name)  # a plain dict has no other attribute, so getattr would fail first (~0.4 us)
        return default if value is None else value
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, dict):
        value = obj.get(name)
    return default if value is None else value


def _parse_tool_calls(raw_calls: Any) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for i, raw in enumerate(raw_calls or []):
        function = _attr(raw, "function")
        name = _attr(function, "name")
        if not name:
            raise LLMError(
                "a tool call without a function name",
                model="?",
                kind="bad_response",
            )
        arguments = _attr(function, "arguments", "")
        if not isinstance(arguments, str):  # keep what the model produced; only strings are raw
            arguments = json.dumps(arguments)
        calls.append(
            ToolCall(id=str(_attr(raw, "id", f"call_{i}")), name=str(name), arguments=arguments)
        )
    return calls


class LiteLLMChatModel:
    """Any litellm provider: lazy import, bounded retries of transient errors only (:mod:`mesa_llm.llm.retry`), per-model
    concurrency, timeout, usage and cost, optional cache.

    ``name`` is the litellm model string; a request's own ``model`` (when set) takes precedence for
    the call. Without ``limiter`` a private ``ConcurrencyLimiter()`` (8 at once) is used: share one
    limiter between backends that hit the same provider.

    ``api_base_trusted`` says whether the caller itself chose ``api_base`` (code, the command line):
    False for one a scenario, sweep spec or recording named, which then gets no provider key unless
    ``MESA_LLM_ALLOWED_API_BASES`` lists it (:mod:`mesa_llm.llm.consent`); a model whose provider
    would read other credentials from the environment is then refused with a ValueError.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 4,
        limiter: ConcurrencyLimiter | None = None,
        cache: ResponseCache | None = None,
        input_cost_per_token: float | None = None,
        output_cost_per_token: float | None = None,
        extra_params: dict[str, Any] | None = None,
        initial_wait: float = 0.5,
        direct: bool = True,
        api_base_trusted: bool = True,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.name = model
        self.model = model
        self.api_base = strip_url_credentials(api_base)
        #: whether the provider key may go to ``api_base`` (see mesa_llm.llm.consent)
        self.sends_key = self.api_base is None or api_base_trusted or api_base_allowed(self.api_base)
        self._providers: dict[str, str | None] = {}
        if not self.sends_key:
            problem = self._withheld_key_problem(model)
            if problem is not None:
                raise ValueError(problem)
        self._api_key = api_key
        self._redact = Redactor.for_provider(api_key, api_base)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.initial_wait = initial_wait
        self.limiter = limiter if limiter is not None else ConcurrencyLimiter()
        self.cache = cache
        self.input_cost_per_token = input_cost_per_token
        self.output_cost_per_token = output_cost_per_token
        self.extra_params = dict(extra_params or {})
        self._unpriced: set[str] = set()  # models litellm has no price for: don't ask again
        #: take litellm's lean path for ``openai/`` models at an api_base (see mesa_llm.llm.direct)
        self.direct = direct
        self._direct: DirectOpenAI | None = None
        #: extra body fields per request, for a local llama.cpp server this process started only
        self.server_fields = request_fields_for(self.api_base)

    def warm_up(self) -> None:
        """Do the one-time work of a first call without calling anything: import litellm and the
        OpenAI SDK's resource modules (about 0.6 s that would otherwise land in the first step)."""
        _litellm()
        with contextlib.suppress(ImportError):  # litellm always brings the openai SDK
            importlib.import_module("openai.resources")

    def declared_tool_mode(self, model: str) -> str | None:
        """"tools" for a provider's own endpoint when litellm's model map says the model calls
        tools; None (probe it) for any other server, e.g. a local one behind ``api_base``."""
        if self.api_base is not None:
            return None
        try:
            return "tools" if _litellm().supports_function_calling(model=model) else None
        except Exception:  # litellm raises for models missing from its map
            return None

    async def complete_once(self, request: ChatRequest) -> ChatResponse:
        """One attempt, uncached: for the tool-mode probe, a pre-flight question not worth retries."""
        once = copy.copy(self)
        once.max_attempts, once.cache = 1, None
        return await once.complete(request)

    def __repr__(self) -> str:  # never shows the key
        return f"LiteLLMChatModel(model={self.model!r}, api_base={public_url(self.api_base)!r})"

    # -- credentials -----------------------------------------------------------------------------

    def _provider(self, model: str) -> str | None:
        """litellm's provider of ``model`` (None when litellm cannot tell)."""
        if model not in self._providers:
            head, sep, _ = model.partition("/")
            provider: str | None = head if sep and is_openai_compatible(model, None) else None
            if provider is None:
                try:
                    provider = str(_litellm().get_llm_provider(model=model)[1])
                except Exception:  # an unknown provider: litellm refuses the call itself
                    provider = None
            self._providers[model] = provider
        return self._providers[model]

    def _withheld_key_problem(self, model: str) -> str | None:
        """Why ``model`` cannot be called at an api_base that gets no key (None: it can, keyless)."""
        if is_openai_compatible(model, self._provider(model)):
            return None
        assert self.api_base is not None
        return (
            f"model {model!r} would send the credentials litellm reads from the environment to "
            f"api_base {public_url(self.api_base)}, which a file named (scenario, sweep or recording), "
            f"not you: {how_to_allow(self.api_base)} to allow it"
        )

    def _key_for(self, model: str) -> str | None:
        """The ``api_key`` a call of ``model`` passes (None: litellm's own, from the environment)."""
        if not self.sends_key:
            problem = self._withheld_key_problem(model)
            if problem is not None:
                raise LLMError(problem, model=model, kind="permission")
            return PLACEHOLDER_API_KEY  # never the environment's key: the host was not chosen by the user
        api_key = self._api_key
        if (
            api_key is None
            and self.api_base is not None
            and _is_openai_compatible(model)
            and not os.environ.get("OPENAI_API_KEY")
        ):
            api_key = PLACEHOLDER_API_KEY
        return api_key

    # -- the call --------------------------------------------------------------------------------

    def _call_kwargs(self, model: str, request: ChatRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(self.extra_params)
        kwargs.update(
            model=model,
            messages=request.messages,
            timeout=self.timeout,
            num_retries=0,  # also becomes the SDK's max_retries: ours is the only retry loop
        )
        optional = {
            "tools": request.tools,
            "tool_choice": request.tool_choice,
            "response_format": request.response_format,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "api_base": self.api_base,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        api_key = self._key_for(model)
        if api_key is not None:
            kwargs["api_key"] = api_key
        if self.server_fields is not None:
            kwargs["extra_body"] = self.server_fields(request)
        return kwargs

    def _sender(self, litellm: Any, model: str, kwargs: dict[str, Any]) -> Any:
        """``litellm.acompletion``, or litellm's lean path when it gives the same result faster."""
        params = set(kwargs) - {"model", "messages", "timeout", "num_retries", "api_base", "api_key"}
        if not self.direct or not direct_path_applies(litellm, model, self.api_base, params):
            return litellm.acompletion
        if self._direct is None:
            self._direct = DirectOpenAI(litellm)
        return self._direct.acompletion

    def _scrubbed(self, response: ChatResponse) -> ChatResponse:
        """``response`` with the configured secrets blanked out of everything the provider wrote."""
        redact_text = self._redact.values
        if response.content:
            response.content = redact_text(response.content)
        for call in response.tool_calls:
            call.arguments = redact_text(call.arguments)
            call.name = redact_text(call.name)
            call.id = redact_text(call.id)
        return response

    def _cost(self, model: str, raw: Any, usage: Usage) -> float:
        if self.input_cost_per_token is not None or self.output_cost_per_token is not None:
            return usage.prompt_tokens * (self.input_cost_per_token or 0.0) + (
                usage.completion_tokens * (self.output_cost_per_token or 0.0)
            )
        if model in self._unpriced:
            return 0.0
        try:
            if isinstance(raw, LeanCompletion):
                raw = raw.model_response()
            cost = _litellm().completion_cost(completion_response=raw, model=model)
        except Exception:  # litellm raises for models missing from its price map
            self._unpriced.add(model)
            return 0.0
        return float(cost or 0.0)

    def _to_response(self, model: str, raw: Any) -> ChatResponse:
        """The answer as a ChatResponse (its latency is set by the caller, over all attempts)."""
        answer = raw.data if isinstance(raw, LeanCompletion) else raw  # read alike: dict or ModelResponse
        choices = _attr(answer, "choices") or []
        if not choices:
            raise LLMError("the answer has no choices", model=model, kind="bad_response")
        choice = choices[0]
        message = _attr(choice, "message")
        try:
            tool_calls = _parse_tool_calls(_attr(message, "tool_calls"))
        except LLMError as err:
            err.model = model
            raise
        raw_usage = _attr(answer, "usage")
        # a provider's numbers are checked, never coerced: negative or absurd usage is not counted
        usage = checked_usage(_attr(raw_usage, "prompt_tokens"), _attr(raw_usage, "completion_tokens"))
        return ChatResponse(
            content=_attr(message, "content"),
            tool_calls=tool_calls,
            usage=usage,
            model=str(_attr(answer, "model", model)),
            cost_usd=0.0 if usage.invalid else self._cost(model, raw, usage),
            finish_reason=_attr(choice, "finish_reason"),
        )

    async def _attempt(self, model: str, send: Any, kwargs: dict[str, Any], clock: AttemptClock) -> ChatResponse:
        """One attempt: a slot of the limiter, the request timed and bounded, the answer parsed;
        every failure classified and scrubbed here, before the retry loop logs it or anyone
        records it. One coroutine frame between the retry loop and the sender (each await of the
        HTTP exchange resumes every frame of the chain)."""
        try:
            semaphore = self.limiter.semaphore(model)
            async with semaphore if semaphore is not None else self.limiter.slot(model):
                # asyncio.timeout, not wait_for: wait_for (3.11) runs the call as a new task, one loop
                # turn later, so a burst of agents sent nothing until every agent had built its prompt
                started = clock.begin()
                try:
                    async with asyncio.timeout(self.timeout + TIMEOUT_MARGIN_S):
                        raw = await send(**kwargs)
                finally:
                    clock.end(started)
            return self._scrubbed(self._to_response(model, raw))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a scrubbed LLMError
            error = classify(exc, model)
            if not self.sends_key and error.kind in ("authentication", "permission") and self.api_base:
                error.message += (
                    f"; no API key was sent: api_base {public_url(self.api_base)} was named by a file "
                    f"(scenario, sweep or recording); {how_to_allow(self.api_base)} to send yours"
                )
            error.message = self._redact(error.message)
            error.args = (error.message,)
            raise error from None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request`` through litellm; raise :class:`LLMError` when it fails for good."""
        model = request.model or self.model
        key = request.cache_key() if self.cache is not None else None
        if self.cache is not None and key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit

        litellm = _litellm()
        kwargs = self._call_kwargs(model, request)
        send = self._sender(litellm, model, kwargs)
        if request.tools_json is not None and request.tools is not None and self._direct is not None:
            self._direct.keep_tools(request.tools)  # its caller keeps it unchanged (ChatRequest.tools_json)
        clock = AttemptClock()
        # a bound method, not closures: the hot path makes no per-call functions
        attempt = functools.partial(self._attempt, model, send, kwargs, clock)
        try:
            response, attempts = await call_with_retries(
                attempt,
                model=model,
                max_attempts=self.max_attempts,
                initial_wait=self.initial_wait,
            )
        except LLMError as err:
            err.latency_s, err.attempt_latencies_s = clock.latency_s, clock.attempt_latencies_s
            raise
        response.latency_s, response.attempt_latencies_s = clock.latency_s, clock.attempt_latencies_s
        response.attempts = attempts
        if self.cache is not None and key is not None:
            self.cache.put(key, response)
        return response


# -- configuration checks ---------------------------------------------------------------------


def missing_credentials(model: str, api_base: str | None, api_key: str | None = None) -> list[str]:
    """Environment variables litellm needs for ``model`` that are not set; ``[]`` if none, never raises.

    An OpenAI-compatible model with an ``api_base`` (a local server) needs none; neither does a
    model given an explicit ``api_key``.
    """
    if api_key or (api_base and _is_openai_compatible(model)):
        return []
    try:
        result = _litellm().validate_environment(model=model, api_base=api_base)
        missing = result.get("missing_keys") or []
        return [str(name) for name in missing if not os.environ.get(str(name))]
    except Exception:  # an unknown provider is reported at call time, with a clearer message
        return []


def _whole(text: str) -> str:
    """A provider's message on one line, untruncated, secrets redacted."""
    return " ".join(redact(text).split())


def model_problem(model: str, api_base: str | None = None, *, timeout: float = 30.0) -> str | None:
    """One line saying why litellm cannot use ``model``, or None; asked before step 1.

    A provider litellm does not know (``notaprovider/xyz``, ``gpt-4o-mni``) is found by litellm's
    own lookup, with no call; a model in litellm's model map is taken as known; any other one
    (``openai/gpt-4o-mni``) gets a one-token probe, and a refusal that no retry can mend (unknown
    model, bad key, no access, bad request) is the line, with the provider's whole message. A
    model behind ``api_base`` is left to the server's tool-mode probe (a local server serves any
    name). Timeouts and an unreachable network say nothing here: the run reports them."""
    if api_base and _is_openai_compatible(model):
        return None
    lib = _litellm()
    try:
        lib.get_llm_provider(model=model, api_base=api_base)
    except Exception as exc:  # noqa: BLE001 - litellm's BadRequestError: no such provider
        return f"model {model!r}: litellm knows no provider for it: {_whole(str(exc))}"
    if api_base is None and (model in lib.model_cost or model.split("/", 1)[-1] in lib.model_cost):
        return None
    probe = ChatRequest(model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1, purpose="probe")
    chat = LiteLLMChatModel(model, api_base=api_base, timeout=timeout, max_attempts=1)
    try:
        asyncio.run(chat.complete_once(probe))
    except LLMError as err:
        if err.fatal or err.kind == "bad_request":
            cause: BaseException | None = err
            while isinstance(cause, LLMError):  # the provider's own words, not our summary of them
                cause = cause.__cause__ or cause.__context__
            said = f": the provider says: {_whole(str(cause))}" if cause is not None else ""
            return f"model {model!r} cannot be used: {_whole(err.message)}{said}"
    except Exception:  # noqa: BLE001 - anything else is the run's to report
        return None
    return None


async def check_server(api_base: str, timeout: float = 3.0) -> str | None:
    """None if something answers HTTP at ``api_base`` (any status), else a one-line reason."""
    shown = redact(strip_url_credentials(api_base) or "")
    parts = urllib.parse.urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"invalid api_base {shown!r}: expected http(s)://host[:port]/path"
    secure = parts.scheme == "https"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError:
        return f"invalid api_base {shown!r}: bad port"
    prefix = f"no server answers at {shown}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                parts.hostname, port, ssl=ssl.create_default_context() if secure else None
            ),
            timeout,
        )
    except TimeoutError:
        return f"{prefix}: no connection within {timeout:g} s"
    except ConnectionRefusedError:
        return f"{prefix}: connection refused"
    except OSError as exc:
        return f"{prefix}: {exc.strerror or exc}"
    try:
        path = parts.path or "/"
        host = parts.netloc.rsplit("@", 1)[-1]
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("ascii")
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), max(0.05, deadline - loop.time()))
    except TimeoutError:
        return f"{prefix}: connected, but no HTTP answer within {timeout:g} s"
    except (OSError, UnicodeError) as exc:
        return f"{prefix}: {getattr(exc, 'strerror', None) or exc}"
    finally:
        writer.close()
        with suppress(Exception):
            await writer.wait_closed()
    if status_line.startswith(b"HTTP/"):
        return None
    return f"{prefix}: something listens there but does not speak HTTP"


def has_price(model: str) -> bool:
    """Whether litellm's bundled price map prices ``model`` (else its calls cost $0 to a budget)."""
    try:
        info = _litellm().get_model_info(model=model)
    except Exception:  # litellm raises for models missing from its price map
        return False
    return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))
