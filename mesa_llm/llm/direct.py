"""A lean path through litellm for ``openai/<model>`` served at an ``api_base`` (local servers, proxies).

Why: a 100-agent step against a local server spent ~3.9 ms of client CPU per call, ~3 ms of it in
litellm's per-call wrapper (logging object, callbacks, its own cost calculation, a thread-pool hop
for the sync ``completion``) and in the OpenAI SDK's recursive TypedDict transform of the
parameters (a no-op for JSON dicts). This path runs the pieces of litellm that decide what is sent
and what comes back, in litellm's order (``litellm.main.acompletion`` →
``OpenAIChatCompletion.acompletion``), and skips the rest:

1. ``litellm.get_optional_params`` maps the parameters for the provider (``openai``);
2. the provider config's ``async_transform_request`` builds the body;
3. the ``AsyncOpenAI`` client litellm itself caches for this key and base (its aiohttp transport and
   connection pool) posts it: the SDK builds the request, raises status errors and parses the answer;
4. ``transform_parsed_response_dict`` and ``convert_to_model_response_object`` give the
   ``ModelResponse``; failures become ``OpenAIError`` and then ``litellm.exception_type``, as litellm
   raises them. An everyday answer (one the conversion would give back unchanged in every field we
   read) skips the conversion: :class:`LeanCompletion` carries the provider's JSON, and builds the
   ``ModelResponse`` only when litellm's price lookup needs it;
5. a call of a shape made before (``DirectOpenAI._prepare``: the same model, base, key, timeout, scalar
   parameters and kept tool list, plain messages, posted by :mod:`mesa_llm.llm.http1`) skips steps 1-3's
   per-call work: its body is the bytes made around the messages' JSON from the first such call's
   mapping and transform (checked to give that call's body exactly), until litellm is asked for the
   client again. Anything else takes steps 1-3, which stay the reference.

So answers, errors and recordings are the same as through ``litellm.acompletion`` (tests compare
both paths on the same server). It is used only when nothing litellm-global would change the call
(:func:`direct_path_applies`): no callbacks (a user who registers litellm callbacks expects them to
run), no global headers, key, base, organisation or OpenAI config. Everything else takes
``litellm.acompletion``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from mesa_llm.encoded_json import PLACEHOLDER, PLACEHOLDER_BYTES, fill, messages_json

#: The only parameters the backend sends; anything else (``extra_params``) takes the full path.
SUPPORTED_PARAMS = frozenset(
    {"tools", "tool_choice", "response_format", "temperature", "max_tokens", "seed"}
)


def direct_path_applies(litellm: Any, model: str, api_base: str | None, params: set[str]) -> bool:
    """Whether a call to ``model`` at ``api_base`` with these parameter names can take the lean path."""
    if not model.startswith("openai/") or not api_base or not params <= SUPPORTED_PARAMS:
        return False
    if _any_environ(_FULL_PATH_ENV) or _any_global(litellm):
        return False
    return _no_openai_config(litellm)


def _any_global(litellm: Any) -> bool:
    """``any(getattr(litellm, name, None) for name in _LITELLM_GLOBALS)``, read from the module's
    namespace in one pass when it holds every name (``litellm.x = ...`` writes there); a name it
    lacks is asked of the module (its lazy ``__getattr__``), as before."""
    names = vars(litellm) if type(getattr(litellm, "__dict__", None)) is dict else None
    if names is None or not names.keys() >= _GLOBALS_SET:
        return any(getattr(litellm, name, None) for name in _LITELLM_GLOBALS)
    return any(map(names.get, _LITELLM_GLOBALS))


def _any_environ(names: tuple[str, ...]) -> bool:
    """Whether any of ``names`` is set non-empty in the environment (``any(_environ_get(n) for n in names)``
    in one pass over the environment's own store)."""
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict:  # an unusual os.environ: ask it
        return any(os.environ.get(name) for name in names)
    return any(map(data.get, [_encoded_names.get(name) or _encode_name(name) for name in names]))


#: environment variables that send a call down litellm's full path: ours, an organisation, and
#: litellm's own HTTP handler (it would not use the SDK)
_FULL_PATH_ENV = ("MESA_LLM_LITELLM_FULL_PATH", "OPENAI_ORGANIZATION", "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER")
#: litellm globals that, when set, send a call down its full path: callbacks (a user who registers
#: them expects them to run), global headers, key, base, organisation, session, mocks and aliases
_LITELLM_GLOBALS = (
    "callbacks",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
    "input_callback",
    "service_callback",
    "headers",
    "api_key",
    "openai_key",
    "api_base",
    "organization",
    "aclient_session",
    "network_mock",
    "model_alias_map",
)


_GLOBALS_SET = frozenset(_LITELLM_GLOBALS)


def _environ_get(name: str) -> str | bytes | None:
    """``os.environ.get(name)`` (truthy alike) without its key and value codecs (~2 us a lookup, on
    every call): the mapping's own store, read as ``os.environ`` reads it."""
    data = getattr(os.environ, "_data", None)
    if type(data) is not dict:  # an unusual os.environ: ask it
        return os.environ.get(name)
    return data.get(_encoded_names.get(name) or _encode_name(name))


_encoded_names: dict[str, Any] = {}


def _encode_name(name: str) -> Any:
    encoded = _encoded_names[name] = os.environ.encodekey(name)
    return encoded


#: litellm's OpenAIConfig class, a copy of its attributes (name to value) and whether its
#: ``get_config()`` was empty then
_config_seen: list[Any] = [None, {}, False]


def _no_openai_config(litellm: Any) -> bool:
    """Whether ``litellm.OpenAIConfig.get_config()`` is empty (no global OpenAI parameters set).

    ``get_config`` filters the class's attributes (~6 us a call); its answer depends only on
    those names and values, so it is asked again only when they differ from the last time (a
    config set between two calls, ``OpenAIConfig(temperature=...)``, is seen on the next call)."""
    try:
        config = litellm.OpenAIConfig
        attributes = vars(config)
        seen_class, seen_attributes, empty = _config_seen
        # compared as mappings (names and values): no copy made on every call
        if seen_class is config and attributes == seen_attributes:
            return bool(empty)
        empty = not config.get_config()
        kept = dict(attributes)
    except Exception:  # a litellm without this hook, or values that do not compare: its full path
        return False
    _config_seen[:] = [config, kept, empty]
    return empty


#: seconds a client litellm handed out is reused without asking its cache again (its cache keeps
#: clients for an hour; a client closed meanwhile fails its call, which the retry loop retries)
CLIENT_RECHECK_S = 1.0

#: the SDK's request options among a transformed request's keys (`DirectOpenAI._post` takes them out of the body)
_EXTRAS = ("extra_headers", "extra_query", "extra_body")

#: parameters whose values litellm passes through unchanged for OpenAI-compatible models
_PASSED_THROUGH = ("tools", "response_format")


class DirectOpenAI:
    """``acompletion(**kwargs)`` with ``litellm.acompletion``'s arguments and results, for the calls
    :func:`direct_path_applies` accepts. One per backend; holds no connection of its own."""

    def __init__(self, litellm: Any) -> None:
        # imported here: litellm's internals load only once litellm itself is imported
        from litellm.llms.openai.common_utils import (
            OpenAIError,
            build_output_token_limit_response,
            is_output_token_limit_error,
        )
        from litellm.llms.openai.openai import OpenAIChatCompletion
        from litellm.types.utils import LlmProviders, ModelResponse
        from litellm.utils import ProviderConfigManager, convert_to_model_response_object
        from openai._base_client import make_request_options
        from openai._constants import RAW_RESPONSE_HEADER
        from openai._utils._json import openapi_dumps
        from openai.types.chat import ChatCompletion

        self._litellm = litellm
        self._handler = OpenAIChatCompletion()
        self._OpenAIError = OpenAIError
        self._token_limit = (is_output_token_limit_error, build_output_token_limit_response)
        self._ModelResponse = ModelResponse
        self._convert = convert_to_model_response_object
        self._make_options = make_request_options
        self._raw_header = RAW_RESPONSE_HEADER
        self._ChatCompletion = ChatCompletion
        self._configs = (ProviderConfigManager, LlmProviders.OPENAI)
        self._dumps = openapi_dumps
        #: aiohttp's own ``ClientSession._request`` and aiohttp (a recorder that patches it sees
        #: requests only through aiohttp: see _lean_pool)
        self._aiohttp_request: tuple[Any, Any] = _aiohttp_request()
        self._config_by_model: dict[str, Any] = {}
        #: per SDK client (litellm caches them) and timeout: (client, (url, headers) or None)
        self._templates: dict[tuple[int, float], tuple[Any, Any]] = {}
        #: per httpx client, URL and timeout: how to post through litellm's aiohttp session
        self._routes: dict[tuple[int, str, float], _Route] = {}
        #: litellm's SDK client per key, base, timeout and retries, until when it is taken unasked
        self._clients: dict[tuple[Any, ...], tuple[Any, float]] = {}
        #: litellm's parameter mapping per model and shape of parameters (see _optional_params)
        self._optional_memo: dict[Any, tuple[dict[str, Any], tuple[str, ...]]] = {}
        #: tool lists their callers keep unchanged (see `keep_tools`), with their JSON once made
        self._kept_tools: dict[int, tuple[list[Any], bytes | None]] = {}
        #: per shape of call (see `_shape_key`): what its calls send but their messages, or None when
        #: the shape cannot be prepared (see `_prepare`)
        self._prepared: dict[tuple[Any, ...], _Prepared | None] = {}

    def keep_tools(self, tools: list[Any]) -> None:
        """Note that ``tools`` stays unchanged from now on (an LLM policy's run-long list, which
        ``ChatRequest.tools_json`` stands for): its JSON in a request body is made once, not on
        every call (~20 us of a ~4 KB act request body, most of its encoding: the schemas' numbers)."""
        if self._kept_tools.get(id(tools), (None,))[0] is not tools:
            if len(self._kept_tools) > 64:
                self._kept_tools.clear()
            self._kept_tools[id(tools)] = (tools, None)

    def _body(self, data: dict[str, Any]) -> bytes:
        """``openapi_dumps(data)`` (the SDK's encoding of a request body), the same bytes, encoded once with
        the parts already made put in place: the messages' JSON (`mesa_llm.encoded_json.messages_json`: each
        message's strings encoded once for this body, the request key and the record) and a kept tool list's
        (`keep_tools`: made once per list)."""
        if not all(type(k) is str for k in data):
            return self._dumps(data)
        made: dict[str, bytes] = {}
        messages = messages_json(data.get("messages"))
        if messages is not None:
            try:
                made["messages"] = messages.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: the SDK's own encoding raises as it does
                return self._dumps(data)
        tools = data.get("tools")
        kept = self._kept_tools.get(id(tools)) if tools is not None else None
        if kept is not None and kept[0] is tools:
            text = kept[1]
            if text is None:
                text = self._dumps(tools)
                self._kept_tools[id(tools)] = (tools, text)
            made["tools"] = text
        if not made:
            return self._dumps(data)
        body = fill(self._dumps({k: (PLACEHOLDER if k in made else v) for k, v in data.items()}),
                    [made[k] for k in data if k in made])  # fmt: skip
        return body if body is not None else self._dumps(data)

    def _config_for(self, model: str) -> Any:
        """The provider config litellm's OpenAI handler would use for ``model`` (one per model)."""
        config = self._config_by_model.get(model)
        if config is None:
            manager, provider = self._configs
            config = manager.get_provider_chat_config(model=model, provider=provider)
            config = config if config is not None else self._litellm.OpenAIConfig()
            config = self._config_by_model[model] = _with_known_hosts(config)
        return config

    def _optional_params(
        self, model: str, messages: list[dict[str, Any]], max_retries: int, params: dict[str, Any]
    ) -> dict[str, Any]:
        """``litellm.get_optional_params`` for these parameters, mapped once per model and shape.

        The mapping decides by the model, the names present and the scalar values; the tools and the
        response format it passes through unchanged for OpenAI-compatible models (checked on the
        first call of each shape: when litellm returns other objects, it is asked on every call)."""
        litellm = self._litellm
        response_format = params.get("response_format")
        format_type = response_format.get("type") if isinstance(response_format, dict) else type(response_format)
        scalars = tuple(sorted((k, v) for k, v in params.items() if k not in _PASSED_THROUGH))
        try:
            key: Any = (model, max_retries, scalars, format_type, "tools" in params, bool(litellm.drop_params))
            hash(key)
        except TypeError:  # an unhashable scalar: no memo
            key = None
        memo = self._optional_memo.get(key) if key is not None else None
        if memo is not None:  # in litellm's order of keys: the body is the same bytes
            fixed, passed = memo
            return {k: params[k] if k in passed else v for k, v in fixed.items()}
        optional = litellm.get_optional_params(
            model=model, custom_llm_provider="openai", messages=messages, max_retries=max_retries, **params
        )
        passed = tuple(name for name in _PASSED_THROUGH if name in params)
        if key is not None and all(optional.get(name) is params[name] for name in passed):
            if len(self._optional_memo) > 256:
                self._optional_memo.clear()
            self._optional_memo[key] = (dict(optional), passed)
        return dict(optional)

    async def acompletion(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        timeout: float,
        api_base: str,
        api_key: str | None = None,
        num_retries: int = 0,
        **params: Any,
    ) -> Any:
        """One chat completion, raising litellm's exceptions (as ``litellm.acompletion`` would)."""
        litellm = self._litellm
        bare = model.split("/", 1)[1]
        try:
            return await self._call(bare, messages, timeout, api_base, api_key, num_retries, params)
        except Exception as exc:  # noqa: BLE001 - mapped exactly as litellm.main.acompletion maps it
            raise litellm.exception_type(
                model=model,
                custom_llm_provider="openai",
                original_exception=exc,
                completion_kwargs={"model": model, "messages": messages},
                extra_kwargs={"api_base": api_base},
            ) from exc

    async def _call(
        self,
        model: str,
        messages: list[dict[str, Any]],
        timeout: float,
        api_base: str,
        api_key: str | None,
        max_retries: int,
        params: dict[str, Any],
    ) -> Any:
        config = self._config_for(model)
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        key = self._shape_key(model, api_base, api_key, timeout, max_retries, params)
        ready = self._ready(key, messages, params.get("tools")) if key is not None else None
        if ready is not None:  # a prepared shape: the same body, without litellm's mapping and transform
            prepared, content = ready
            data = dict(prepared.data)
            data["messages"] = messages
            client, sending = prepared.client, (content, prepared.template, prepared.route)
        else:
            optional = self._optional_params(model, messages, max_retries, params)
            optional.pop("stream", None)
            optional.pop("stream_options", None)
            max_retries = optional.pop("max_retries", max_retries)
            litellm_params = {"custom_llm_provider": "openai", "api_base": api_base}
            data = await config.async_transform_request(
                model=model, messages=messages, optional_params=optional, litellm_params=litellm_params, headers={}
            )
            client = sending = None
        try:
            if client is None:
                client = self._client(api_key, api_base, timeout, max_retries)
                if key is not None:  # until litellm is asked for the client again
                    held = self._clients.get((asyncio.get_running_loop(), api_key, api_base, timeout, max_retries))
                    until = held[1] if held is not None and held[0] is client else 0.0
                    sending = self._prepare(key, client, data, messages, params.get("tools"), timeout, until)
            headers, response = await self._post(client, data, timeout, sending)
            dumped = config.transform_parsed_response_dict(response.model_dump())
            if isinstance(response, _Dumped) and _everyday_completion(dumped):
                # litellm's ModelResponse would give the same fields back: made only if asked for
                return LeanCompletion(dumped, lambda: self._model_response(dumped, headers))
            return self._model_response(dumped, headers)
        except Exception as e:  # noqa: BLE001 - as OpenAIChatCompletion.acompletion wraps it
            exception_response = getattr(e, "response", None)
            error_headers = getattr(e, "headers", None)
            if error_headers is None and exception_response:
                error_headers = getattr(exception_response, "headers", None)
            raise self._OpenAIError(
                status_code=getattr(e, "status_code", 500),
                message=getattr(e, "message", str(e)),
                headers=error_headers,
                body=getattr(e, "body", None),
            ) from e

    def _shape_key(
        self, model: str, api_base: str, api_key: str | None, timeout: float, max_retries: int, params: dict[str, Any]
    ) -> tuple[Any, ...] | None:
        """What decides a call's body but its messages, and where and how it goes: the loop (its clients
        and pools), model, base, key, timeout, retries, litellm's ``drop_params``, the scalar parameters
        and the tool list (by identity: a kept list, see `_ready`); None for a call with a response
        format or an unhashable value (JSON mode: its format changes every step), never prepared."""
        if "response_format" in params:
            return None
        tools = params.get("tools")
        try:
            key = (
                asyncio.get_running_loop(), model, api_base, api_key, timeout, max_retries,
                bool(self._litellm.drop_params), id(tools) if tools is not None else None,
                tuple(sorted((k, v) for k, v in params.items() if k != "tools")),
            )  # fmt: skip
            hash(key)
        except TypeError:
            return None
        return key

    def _ready(self, key: tuple[Any, ...], messages: Any, tools: Any) -> tuple[_Prepared, bytes] | None:
        """The prepared shape of ``key`` and this call's body, when the shape is prepared, its client
        still taken unasked (:data:`CLIENT_RECHECK_S`, as `_client`), its tool list the same kept
        object, its route still posts through our own pool, and the messages are plain (their JSON
        made by `mesa_llm.encoded_json.messages_json`); else None: the full path, which prepares it again."""
        prepared = self._prepared.get(key)
        if prepared is None or prepared.tools is not tools or time.monotonic() >= prepared.until:
            return None
        if tools is not None and self._kept_tools.get(id(tools)) is not prepared.kept:  # kept anew: encoded anew
            return None
        if self._lean_pool(prepared.route) is None:
            return None
        text = messages_json(messages)
        if text is None:
            return None
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the full path raises as the SDK does
            return None
        return prepared, prepared.prefix + encoded + prepared.suffix

    def _prepare(
        self, key: tuple[Any, ...], client: Any, data: dict[str, Any], messages: Any, tools: Any, timeout: float,
        until: float,
    ) -> tuple[bytes, Any, _Route] | None:  # fmt: skip
        """After litellm's mapping and transform made ``data`` (the full path, the reference): prepare its
        shape for the next calls and return the body, template and route of this call; None (not
        prepared: the full path sends, as before) unless the call is of the kind a shape stands for.

        A shape is what the body holds but the messages, as bytes around them: prepared only when the
        transform passed the plain messages through unchanged (for such messages it changes nothing
        whatever their text: it rewrites content lists, tool turns and ``cache_control`` keys, which
        plain messages lack), the tool list is a kept one (unchanged, see `keep_tools`), the SDK's
        template and our own HTTP/1.1 route apply, and the bytes around the messages' JSON with the
        messages' JSON put in give this call's whole body exactly. Kept until the client is asked
        of litellm again (:data:`CLIENT_RECHECK_S`)."""
        text = messages_json(messages)
        if text is None:  # a call of another kind (a repair round's tool turns): the shape stays as it is
            return None
        self._prepared.pop(key, None)
        if (
            data.get("messages") != messages
            or any(data.get(name) for name in _EXTRAS)
            or (tools is not None and self._kept_tools.get(id(tools), (None,))[0] is not tools)
        ):
            return None
        template = self._template(client, timeout)
        if template is None:
            return None
        route = self._aiohttp_route(client._client, template[0], template[1], timeout)
        if route is None or self._lean_pool(route) is None:
            return None
        body = {k: v for k, v in data.items() if k not in _EXTRAS}  # as `_post` sends it (the extras empty)
        content = self._body(body)
        around = self._body({k: (PLACEHOLDER if k == "messages" else v) for k, v in body.items()})
        pieces = around.split(PLACEHOLDER_BYTES)
        try:
            whole = pieces[0] + text.encode("utf-8") + pieces[1] if len(pieces) == 2 else None
        except UnicodeEncodeError:
            whole = None
        if whole != content:  # the shape would not give this call's bytes: never taken for it
            return (content, template, route)
        if len(self._prepared) > 64:
            self._prepared.clear()
        self._prepared[key] = _Prepared(
            data={k: (None if k == "messages" else v) for k, v in data.items()},
            prefix=pieces[0], suffix=pieces[1], tools=tools, kept=self._kept_tools.get(id(tools)) if tools is not None else None,
            client=client, template=template, route=route,
            until=until,
        )  # fmt: skip
        return (content, template, route)

    def _client(self, api_key: str | None, api_base: str, timeout: float, max_retries: int) -> Any:
        """The ``AsyncOpenAI`` client litellm caches for these settings, asked of litellm at most
        once per :data:`CLIENT_RECHECK_S` (its cache lookup hashes the settings and scans for
        expired entries on every call)."""
        # litellm keeps one client per event loop (its aiohttp session belongs to the loop)
        key = (asyncio.get_running_loop(), api_key, api_base, timeout, max_retries)
        now = time.monotonic()
        held = self._clients.get(key)
        if held is not None and now < held[1]:
            return held[0]
        client = self._handler._get_openai_client(
            is_async=True, api_key=api_key, api_base=api_base, timeout=timeout, max_retries=max_retries
        )
        if len(self._clients) > 64:
            self._clients.clear()
        self._clients[key] = (client, now + CLIENT_RECHECK_S)
        return client

    def _model_response(self, dumped: dict[str, Any], headers: dict[str, str]) -> Any:
        """litellm's ``ModelResponse`` of an answer, as ``OpenAIChatCompletion.acompletion`` builds it."""
        return self._convert(
            response_object=dumped,
            model_response_object=self._ModelResponse(),
            hidden_params={"headers": headers},
            _response_headers=headers,
        )

    async def _post(
        self, client: Any, data: dict[str, Any], timeout: float, sending: tuple[bytes, Any, _Route] | None = None
    ) -> tuple[Any, Any]:
        """``client.chat.completions.with_raw_response.create(**data)`` as litellm calls it, then
        litellm's checks of the answer (an answer that is no completion object, a timeout, an
        output-token limit). ``sending``: the body's bytes, template and route already made for
        ``data`` (a prepared shape, see `_prepare`)."""
        import openai

        started = time.time()
        # the SDK's create() takes these three as request options, not as body fields
        body = dict(data)
        extra_headers = body.pop("extra_headers", None)
        extra_query = body.pop("extra_query", None)
        extra_body = body.pop("extra_body", None)
        try:
            template = None if extra_headers or extra_query or sending is not None else self._template(client, timeout)
            if sending is not None:  # made for this very data (a prepared shape has no extras)
                headers, response = await self._send(client, sending[1], body, timeout, sending)
            elif template is None:  # let the SDK build and send it (as litellm's path would)
                raw = await client.post(
                    "/chat/completions",
                    body=body,
                    options=self._make_options(
                        extra_headers={self._raw_header: "true", **(extra_headers or {})},
                        extra_query=extra_query,
                        extra_body=extra_body,
                        timeout=timeout,
                        security={"bearer_auth": True},
                    ),
                    cast_to=self._ChatCompletion,
                    stream=False,
                )
                headers, response = dict(raw.headers), raw.parse()
            else:
                if extra_body:
                    body.update(extra_body)  # what the SDK's _merge_mappings does with extra_body
                headers, response = await self._send(client, template, body, timeout)
            if not hasattr(response, "model_dump"):
                raise self._OpenAIError(
                    status_code=500,
                    message=f"Empty or invalid response from LLM endpoint. Received: {response!r}. Check the "
                    "reverse proxy or model server configuration.",
                )
            return headers, response
        except openai.APITimeoutError as e:
            e.message += f" - timeout value={timeout}, time taken={round(time.time() - started, 2)} seconds"
            raise
        except openai.BadRequestError as e:
            is_limit, build = self._token_limit
            if not is_limit(e):
                raise
            return build(e=e, data=data, is_async=True)

    def _template(self, client: Any, timeout: float) -> tuple[Any, Any] | None:
        """The URL and headers the SDK sends a chat completion with, built once per client by the
        SDK itself (auth, platform and retry headers); None for clients with custom auth."""
        key = (id(client), timeout)
        cached = self._templates.get(key)
        if cached is not None and cached[0] is client:
            return cached[1]
        template = None
        try:
            from openai._models import FinalRequestOptions

            security: Any = {"bearer_auth": True}
            if client._custom_auth(security) is None and not client._idempotency_header:
                options = FinalRequestOptions.construct(
                    method="post",
                    url="/chat/completions",
                    json_data={},
                    headers={self._raw_header: "true"},
                    timeout=timeout,
                    security=security,
                )
                request = client._build_request(options)
                headers = request.headers.copy()
                headers.pop("content-length", None)
                template = (request.url, headers)
        except Exception:  # an SDK whose internals differ: let it send the request itself
            template = None
        self._templates[key] = (client, template)
        return template

    async def _send(
        self, client: Any, template: tuple[Any, Any], data: dict[str, Any], timeout: float,
        sending: tuple[bytes, Any, _Route] | None = None,
    ) -> tuple[Any, Any]:  # fmt: skip
        """What the SDK's ``request`` does for one attempt (``max_retries=0``): send, map transport
        errors and HTTP errors to its exceptions, parse the answer (``LegacyAPIResponse._parse``).
        ``sending``: the body and route already made for ``data`` (see `_prepare`)."""
        import httpx
        import openai

        url, headers = template
        http = client._client
        route: _Route | None
        if sending is not None:
            content, route = sending[0], sending[2]
        else:
            content = self._body(data)
            route = self._aiohttp_route(http, url, headers, timeout)
        request: Any = None
        try:
            if route is not None:
                pool = self._lean_pool(route)
                if pool is not None:  # our own HTTP/1.1 client (see mesa_llm.llm.http1)
                    answered = await self._post_lean(route, pool, content)
                else:
                    answered = await self._post_aiohttp(route, content)
                if isinstance(answered, tuple):  # the everyday answer: no httpx request or response made
                    return answered
                request = http.build_request("POST", url, headers=headers, content=content, timeout=timeout)
                response = await self._after_transport(http, request, answered)
            else:
                request = http.build_request("POST", url, headers=headers, content=content, timeout=timeout)
                response = await self._send_once(http, request)
        except httpx.TimeoutException as err:
            request = request or http.build_request("POST", url, headers=headers, content=content, timeout=timeout)
            raise openai.APITimeoutError(request=request) from err
        except openai.OpenAIError:
            raise
        except Exception as err:
            request = request or http.build_request("POST", url, headers=headers, content=content, timeout=timeout)
            raise openai.APIConnectionError(request=request) from err
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as err:
            await err.response.aread()
            raise client._make_status_error_from_response(err.response) from None
        content_type, *_ = response.headers.get("content-type", "*").split(";")
        if not content_type.endswith("json"):
            try:
                payload = response.json()
            except Exception:
                return dict(response.headers), response.text
        else:
            payload = response.json()
        if _plain_completion(payload):
            # what construct + model_dump would give back, without building the pydantic models
            return dict(response.headers), _Dumped(payload)
        parsed = client._process_response_data(data=payload, cast_to=self._ChatCompletion, response=response)
        return dict(response.headers), parsed


    def _aiohttp_route(self, http: Any, url: Any, headers: Any, timeout: float) -> _Route | None:
        """How to post straight through the aiohttp session of litellm's transport, built once per
        client, URL and timeout; None where httpx itself must send (auth, hooks, cookies to send,
        mounts or another transport)."""
        if http.auth is not None or any(http.event_hooks.values()) or http.cookies:
            return None
        key = (id(http), str(url), timeout)
        route = self._routes.get(key)
        if route is not None and route.http is http and route.headers_source is headers:
            return route
        route = None
        try:
            from aiohttp import ClientTimeout
            from litellm.llms.custom_httpx.aiohttp_transport import LiteLLMAiohttpTransport
            from multidict import CIMultiDict
            from yarl import URL

            transport = http._transport_for_url(url)
            if type(transport) is LiteLLMAiohttpTransport:
                ssl_verify = transport._ssl_verify
                route = _Route(
                    http=http,
                    transport=transport,
                    url=URL(str(url), encoded=True),
                    headers_source=headers,
                    # what the httpx request would carry: its headers, and Timeout(timeout) as aiohttp's
                    headers=CIMultiDict(headers.multi_items()),
                    timeout=ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout),
                    ssl={} if ssl_verify is None else {"ssl": ssl_verify},
                    probe=http.build_request("POST", url, headers=headers, content=b"", timeout=timeout),
                    seconds=timeout,
                    lean_head=self._lean_head(transport, url, headers),
                    lean_limit=_connector_limit(transport),
                )
        except Exception:  # a litellm or aiohttp whose internals differ: httpx sends, as before
            route = None
        if len(self._routes) > 64:
            self._routes.clear()
        if route is not None:
            self._routes[key] = route
        return route


    def _lean_head(self, transport: Any, url: Any, headers: Any) -> bytes | None:
        """The request line and headers aiohttp would send to ``url`` (up to ``Content-Length``), for
        :mod:`mesa_llm.llm.http1`; None where aiohttp must send: https, a proxy from the environment,
        a session that trusts the environment or has headers of its own, litellm's ``force_ipv4``."""
        import urllib.request

        if url.scheme != "http" or not url.host or getattr(self._litellm, "force_ipv4", False):
            return None
        proxies = urllib.request.getproxies()
        if proxies.get("http") or proxies.get("all"):
            return None  # litellm's transport would go through the proxy: aiohttp does that
        session = transport._get_valid_client_session()
        if session.trust_env or session.headers or session.skip_auto_headers:
            return None

        names = {name.lower() for name in headers}
        if not {"host", "accept", "accept-encoding", "user-agent", "content-type"} <= names:
            return None  # aiohttp would add a header of its own: let it send
        if "content-length" in names or "transfer-encoding" in names or "expect" in names:
            return None
        lines = [b"POST " + url.raw_path + b" HTTP/1.1"]  # raw_path: the path and query, encoded
        for name, value in headers.multi_items():
            # as aiohttp writes them: utf-8, no line breaks (httpx refuses those already)
            lines.append(f"{name}: {value}".encode())
        return b"\r\n".join(lines) + b"\r\nContent-Length: "

    def _lean_pool(self, route: _Route) -> Any:
        """The pool of :mod:`mesa_llm.llm.http1` this call posts through, or None (aiohttp posts):
        the route allows it, the running loop installed it, and aiohttp is not patched (a cassette
        recorder such as vcrpy replaces ``ClientSession._request`` and must see every request)."""
        if route.lean_head is None:
            return None
        request = self._aiohttp_request[0]
        if request is None or self._aiohttp_request[1].ClientSession._request is not request:
            return None
        loop = asyncio.get_running_loop()
        pool = route.pool
        if pool is not None and pool.loop is loop and not pool.closed:
            return pool
        from mesa_llm.llm import http1

        url = route.probe.url
        route.pool = http1.pool_for(loop, url.host, url.port or 80, route.lean_limit)
        return route.pool

    async def _post_lean(self, route: _Route, pool: Any, content: bytes) -> tuple[dict[str, str], Any] | Any:
        """What :meth:`_post_aiohttp` does, through :mod:`mesa_llm.llm.http1`."""
        assert route.lean_head is not None
        status, items, body = await pool.post(route.lean_head, content, route.seconds, route.seconds)
        return _answer(status, items, body)

    async def _post_aiohttp(self, route: _Route, content: bytes) -> tuple[dict[str, str], Any] | Any:
        """Post ``content`` through the aiohttp session of litellm's transport, as the transport itself
        would (same session, proxy, timeouts and TLS option), and read the answer.

        Returns ``(headers, answer)`` for the everyday answer (status 2xx, a plain JSON completion, no
        cookie, no content encoding), with the headers as ``dict(httpx_response.headers)`` gives them;
        for any other answer the ``httpx.Response`` the transport would have made, unread, so that
        it is handled exactly as httpx's path handles it (:func:`_answer`). Raises what the transport
        raises."""
        from litellm.llms.custom_httpx.aiohttp_transport import map_aiohttp_exceptions

        transport = route.transport
        with map_aiohttp_exceptions():
            session = transport._get_valid_client_session()
            proxy = await transport._get_proxy_settings(route.probe)
            answer = await session.request(
                "POST",
                route.url,
                headers=route.headers,
                data=content,
                allow_redirects=False,
                auto_decompress=False,
                timeout=route.timeout,
                proxy=proxy,
                server_hostname=None,
                **route.ssl,
            ).__aenter__()
            try:
                body = await _read_capped(answer, f"{route.url.host}:{route.url.port}")
            finally:
                answer.release()
        return _answer(answer.status, list(answer.headers.items()), body)

    @staticmethod
    async def _after_transport(http: Any, request: Any, response: Any) -> Any:
        """The rest of :meth:`_send_once` for an answer the transport already gave: decoding,
        cookies, redirects."""
        response.request = request
        await response.aread()
        if "set-cookie" in response.headers:
            http.cookies.extract_cookies(response)
        if response.has_redirect_location and http.follow_redirects:
            return await http.send(http._build_redirect_request(request, response))
        return response

    @staticmethod
    async def _send_once(http: Any, request: Any) -> Any:
        """``http.send(request)`` for a client without auth or hooks, through its transport.

        httpx's ``send`` also runs the auth flow, redirect loop, event hooks and a cookie-jar
        update (a ``urllib`` request per answer) on every call; here those run only when the
        answer needs them: cookies when it sets one, the redirect loop when it redirects.
        """
        if http.auth is not None or any(http.event_hooks.values()):
            return await http.send(request)
        transport = http._transport_for_url(request.url)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        if "set-cookie" in response.headers:
            http.cookies.extract_cookies(response)
        if response.has_redirect_location and http.follow_redirects:
            return await http.send(http._build_redirect_request(request, response))
        return response

async def _read_capped(answer: Any, server: str) -> bytes:
    """An aiohttp answer's body (``answer.read()``), refused past :data:`mesa_llm.llm.http1.MAX_BODY`
    bytes: before reading when its ``Content-Length`` says so, else once that much has come."""
    from mesa_llm.llm import http1

    length = answer.content_length
    if length is not None:
        if length > http1.MAX_BODY:
            raise http1.answer_too_large(server, length)
        return bytes(await answer.read())  # aiohttp reads no more than the length
    body = bytearray()
    async for chunk in answer.content.iter_any():  # chunked, or until the server closes
        body += chunk
        if len(body) > http1.MAX_BODY:
            raise http1.answer_too_large(server)
    return bytes(body)


def _with_known_hosts(config: Any) -> Any:
    """A copy of litellm's provider ``config`` that tells whether an api_base is OpenAI's own host
    once per api_base: its request transform asks two or three times per call
    (``_targets_openai_hosted_endpoint``: whether to strip ``cache_control`` and flatten tool
    parameters), parsing the URL each time. For a non-empty api_base the answer depends on nothing
    else (litellm's globals and the environment are read only without one), so it is kept per
    api_base; anything else is asked of litellm every time. ``config`` itself (litellm's, maybe
    shared) is left as it is; a litellm without the method gets ``config`` back."""
    original = getattr(config, "_targets_openai_hosted_endpoint", None)
    if original is None:
        return config
    config = copy.copy(config)
    known: dict[str, bool] = {}

    def targets_openai_hosted_endpoint(custom_llm_provider: str | None, api_base: str | None) -> bool:
        if custom_llm_provider != "openai" or type(api_base) is not str or not api_base:
            return bool(original(custom_llm_provider, api_base))
        found = known.get(api_base)
        if found is None:
            if len(known) >= 64:
                known.clear()
            found = known[api_base] = bool(original(custom_llm_provider, api_base))
        return found

    config._targets_openai_hosted_endpoint = targets_openai_hosted_endpoint
    return config


def _answer(status: int, items: list[tuple[str, str]], body: bytes) -> tuple[dict[str, str], Any] | Any:
    """An answer as the direct path takes it: ``(headers, answer)`` for the everyday answer (status
    2xx, a plain JSON completion, no cookie, no content encoding), with the headers as
    ``dict(httpx_response.headers)`` gives them; for any other answer the ``httpx.Response`` the
    transport would have made, unread, handled exactly as httpx's path handles it."""
    import httpx

    headers: dict[str, str] = {}
    for name, value in items:
        lower = name.lower()
        headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value  # as httpx joins them
    everyday = (
        200 <= status < 300
        and headers.get("content-type", "*").split(";")[0].endswith("json")
        and "set-cookie" not in headers
        and "content-encoding" not in headers
    )
    if everyday:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if _plain_completion(payload):
            return headers, _Dumped(payload)
    return httpx.Response(status_code=status, headers=items, stream=httpx.ByteStream(body))


@dataclass(slots=True, repr=False)  # no repr: the headers hold the provider key
class _Route:
    """What posting through litellm's aiohttp transport needs, prepared once (see ``_aiohttp_route``)."""

    http: Any  # the httpx client whose transport this is
    transport: Any  # litellm's LiteLLMAiohttpTransport
    url: Any  # yarl.URL, already encoded
    headers_source: Any  # the template headers this was built from
    headers: Any  # the same, as a multidict for aiohttp
    timeout: Any  # aiohttp.ClientTimeout equal to httpx.Timeout(timeout)
    ssl: dict[str, Any]  # the transport's TLS option, when it sets one
    probe: Any  # an httpx request to the same URL: proxy lookup and error objects
    seconds: float  # the timeout (connect, and between two reads)
    lean_head: bytes | None  # what mesa_llm.llm.http1 sends before the length; None: aiohttp sends
    lean_limit: int  # exchanges at once through http1 (the aiohttp connector's limit)
    pool: Any = None  # the http1 pool last used (of the running loop)


@dataclass(slots=True, repr=False)  # no repr: the template's headers hold the provider key
class _Prepared:
    """A shape of call prepared by `DirectOpenAI._prepare`: what its calls send but their messages."""

    data: dict[str, Any]  # the transformed request, its keys in order ("messages": None, put in per call)
    prefix: bytes  # the body's bytes before the messages' JSON
    suffix: bytes  # and after it
    tools: Any  # the kept tool list the body holds (None: no tools)
    kept: Any  # its entry in `DirectOpenAI._kept_tools` then (kept again since: its JSON made again, so is the shape)
    client: Any  # litellm's SDK client
    template: Any  # the SDK's URL and headers (`DirectOpenAI._template`)
    route: _Route  # how our own HTTP/1.1 client posts it
    until: float  # time.monotonic() after which the full path is taken again (the client is asked anew)


class _Dumped:
    """A parsed answer that is already the plain dict ``model_dump()`` returns."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def model_dump(self) -> dict[str, Any]:
        return self.data


def _connector_limit(transport: Any) -> int:
    """The connection limit of the aiohttp session of litellm's ``transport`` (its default when
    it sets none: our pools never open connections without bound)."""
    from mesa_llm.llm import http1

    connector = transport._get_valid_client_session().connector
    limit = getattr(connector, "limit", 0)
    return limit if isinstance(limit, int) and limit > 0 else http1.DEFAULT_LIMIT


def _aiohttp_request() -> tuple[Any, Any]:
    """aiohttp's ``ClientSession._request`` as it is now if it is aiohttp's own (None if a wrapper
    replaced it, e.g. a cassette recorder active while the backend was built), and aiohttp."""
    try:
        import aiohttp
    except ImportError:  # no aiohttp: no route through it either
        return None, None
    request = aiohttp.ClientSession._request
    own = getattr(request, "__module__", "") == "aiohttp.client" and not hasattr(request, "__wrapped__")
    return (request if own else None), aiohttp


def _plain_completion(payload: Any) -> bool:
    """Whether ``payload`` is a chat completion of the everyday shape (choices with messages, tool
    calls with functions, usage a dict): for those, dumping the SDK's model gives the same dict
    back but for ``None`` fields it adds. Anything else is parsed by the SDK, as litellm would."""
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        return False
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    usage = payload.get("usage")
    if usage is not None and not (isinstance(usage, dict) and all(isinstance(v, int) for k, v in usage.items() if k.endswith("_tokens"))):
        return False
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            return False
        message = choice["message"]
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return False
        calls = message.get("tool_calls")
        if calls is None:
            continue
        if not isinstance(calls, list):
            return False
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                return False
    return True


class LeanCompletion:
    """An everyday answer (:func:`_everyday_completion`) as the provider's JSON dict, with the
    fields litellm's ``ModelResponse`` would give normalised in place (``finish_reason``).

    Why: building the ``ModelResponse`` (pydantic models for the response, each choice, message,
    tool call and usage) cost more client CPU per call than the rest of the answer's handling.
    ``data`` reads like the ``ModelResponse`` for what the backend takes from it (choices, message,
    tool calls, usage, model); :meth:`model_response` builds the real one on demand (litellm's
    price lookup needs it)."""

    __slots__ = ("_build", "data")

    def __init__(self, data: dict[str, Any], build: Any) -> None:
        self.data = data
        self._build = build

    def model_response(self) -> Any:
        """litellm's ``ModelResponse`` of this answer (built on each call; rarely needed)."""
        return self._build()


#: finish reasons litellm passes through unchanged (``map_finish_reason``)
_PLAIN_FINISH = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
#: message fields whose presence leaves the fields we read as litellm's conversion gives them
_PLAIN_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "refusal", "annotations", "function_call"})
_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})


def _everyday_completion(payload: dict[str, Any]) -> bool:
    """Whether litellm's conversion of ``payload`` (already :func:`_plain_completion`) would give
    back what ``payload`` says for content, tool calls, usage, model and finish reason; if so the
    finish reasons are set as litellm sets them (none -> "stop", "stop" with tool calls ->
    "tool_calls"). Anything unusual (reasoning tags, an unmapped finish reason, usage details, a
    tool call without id, an ``error`` field) is left to litellm's conversion."""
    if payload.get("error") is not None or not isinstance(payload.get("model", ""), str):
        return False
    usage = payload.get("usage")
    if not isinstance(usage, dict) or not usage.keys() <= _USAGE_KEYS:
        return False
    if not all(type(usage.get(k)) is int and usage[k] >= 0 for k in ("prompt_tokens", "completion_tokens")):
        return False
    finishes = []
    for choice in payload["choices"]:
        message = choice["message"]
        if "role" not in message or not message.keys() <= _PLAIN_MESSAGE_KEYS or "finish_details" in choice:
            return False
        content = message.get("content")
        if isinstance(content, str) and content.startswith("<"):  # litellm may split off <think> text
            return False
        calls = message.get("tool_calls")
        for call in calls or ():
            if not isinstance(call.get("id"), str) or not call["id"] or call.get("type", "function") != "function":
                return False
            name = call["function"].get("name")
            if not isinstance(name, str) or not name or name == "multi_tool_use.parallel":
                return False
            try:  # litellm parses every call's arguments: it fails on what json refuses but by syntax
                json.loads(call["function"]["arguments"])
            except json.JSONDecodeError:
                pass
            except (ValueError, RecursionError):
                return False
        finish = choice.get("finish_reason")
        if finish is None:
            finish = "stop"
        elif finish not in _PLAIN_FINISH:
            return False
        finishes.append("tool_calls" if finish == "stop" and calls else finish)
    for choice, finish in zip(payload["choices"], finishes, strict=True):
        choice["finish_reason"] = finish
    return True
