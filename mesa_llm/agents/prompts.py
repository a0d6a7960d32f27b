"""Prompt templates: Jinja files from the top-level ``prompts/`` folder, overridable per scenario and persona.

Templates are untrusted input (they come with shared scenario files), so they render in Jinja's
immutable sandbox (no attribute walks to Python internals, no mutation) with a budget for every
render (value and prompt size, operations, time, nesting: see
:mod:`mesa_llm.agents.template_sandbox`), and overrides resolve only to regular files inside the
scenario's folder or the packaged ``prompts/``. The shipped templates themselves are the package's
code: one whose source, and that of everything it includes, is the shipped file's renders outside
the sandbox (the same text, at less than half the cost; :meth:`PromptLibrary.render`), anything of a
scenario's own in it and it renders in the sandbox. Rendering uses ``StrictUndefined``: a template
that names a variable the context lacks fails loudly instead of rendering an empty string. Every template a library can
resolve has a SHA-256 of its source, recorded in the recording header so a replay can tell when
prompts changed. Text other agents wrote goes through the ``quoted`` filter: one line, escaped,
capped, in quotes, with every character that could break the line or hide text escaped, so it
reads as data and never as the world's own text.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import SecurityError

from mesa_llm.agents.prompt_texts import act_text, memory_text, observation_text, plan_text
from mesa_llm.agents.template_sandbox import (
    MAX_PROMPT_CHARS,
    NO_KEY,
    PromptSandbox,
    TemplateBudgetError,
    dict_key,
    end_render,
    start_render,
)
from mesa_llm.resources import prompts_dir

#: logical template names users override, and the files they stand for ({role} is filled in)
LOGICAL_TEMPLATES: dict[str, str] = {
    "system": "system/{role}.j2",
    "system_base": "system/base.j2",
    "observation": "observation.j2",
    "memory": "memory.j2",
    # the shared beginning of plan.j2 and act.j2 (how to answer, the tools): its own name, so a
    # user overrides it once for both and its hash is recorded with the others
    "tools": "tools.j2",
    "plan": "plan.j2",
    "act": "act.j2",
    "repair": "repair.j2",
}


#: logical templates the agent loop never renders by name, only through another's include
#: (``tools``: act.j2 and plan.j2 include it): the recording keeps them when they are included
INCLUDED_ONLY = frozenset({"tools"})

#: largest prompt template file read (bytes)
MAX_TEMPLATE_BYTES = 256 * 1024
#: longest text of another agent shown in a prompt (characters)
MAX_QUOTED_CHARS = 500
#: longest error message about a template (characters; it may quote the template's own values)
MAX_ERROR_CHARS = 400


class PromptError(ValueError):
    """A template that is missing, does not compile, or needs a variable the context lacks."""


def quoted(text: Any, limit: int = MAX_QUOTED_CHARS) -> str:
    """Someone else's text as one quoted, escaped line: at most ``limit`` characters (then ``…``
    and the original length), in JSON string syntax, with every character that could break the
    line or hide text escaped (controls, Unicode line and paragraph separators, format characters
    such as bidi overrides and zero-width ones, variation selectors), so it cannot pass for the
    world's own lines of a prompt."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + f"… ({len(value):,} chars)"
    return visible(json.dumps(value, ensure_ascii=False))


#: Unicode categories escaped by :func:`visible`: controls (NEL is one), format characters (bidi
#: overrides and isolates, zero-width ones, tag characters), line and paragraph separators,
#: surrogates and unassigned code points
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
_NOT_PRINTABLE_ASCII = re.compile("[^\x20-\x7e]")


def visible(text: str) -> str:
    """``text`` with every character that could break a line or hide text (see
    :data:`_HIDDEN_CATEGORIES`, and variation selectors) written as a JSON ``\\uXXXX`` escape."""
    return _NOT_PRINTABLE_ASCII.sub(_escape_hidden, text)


def _escape_hidden(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\n":
        return "\\n"
    hidden = unicodedata.category(char) in _HIDDEN_CATEGORIES or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
    if not hidden:
        return char
    if code > 0xFFFF:  # as a JSON surrogate pair, so a quoted value stays a JSON string
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def num(value: Any) -> str:
    """A number as a prompt shows it: no trailing ``.0`` or float noise (``8000.0`` -> ``8000``,
    ``117.070000001`` -> ``117.07``); anything else as ``str``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def scores(table: Mapping[str, Any]) -> str:
    """Scores per agent, the most common one said once: ``"0.5 for all but 3: 0.45, 7: 0.55"``
    (a table of 20 equal scores costs a prompt 60 tokens and says nothing)."""
    if not table:
        return ""
    counts: dict[str, int] = {}
    shown = {agent: num(value) for agent, value in table.items()}
    for value in shown.values():
        counts[value] = counts.get(value, 0) + 1
    common, times = max(counts.items(), key=lambda kv: kv[1])
    if times < 2:
        return ", ".join(f"{agent}: {value}" for agent, value in shown.items())
    others = [f"{agent}: {value}" for agent, value in shown.items() if value != common]
    return f"{common} for all" + (f" but {', '.join(others)}" if others else "")


class _PackagedEnvironment(jinja2.Environment):
    """Renders the shipped templates, unchanged, without the sandbox (see :meth:`PromptLibrary.render`).

    The sandbox and its budget are there because a template may come with a shared scenario file
    and is hostile until it has rendered; the package's own templates are the package's code. Their
    output is the same (the sandbox's hooks only count, check and refuse: they change no value),
    so only the cost differs: the hooks were ~half of a prompt's render time, and an LLM agent
    renders four templates a step. The options and filters are the library's own."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A template's globals as one plain dict (as the sandbox's: Jinja's ChainMap is flattened
        into a new dict on every render)."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``obj.attribute``: a plain dict's key without first raising and catching the
        AttributeError Jinja's own look-up starts with (as the sandbox's ``getattr`` does)."""
        value = dict_key(obj, attribute)
        return super().getattr(obj, attribute) if value is NO_KEY else value


#: the Jinja options of every prompt environment, the sandbox's and the shipped templates'
_ENV_OPTIONS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "autoescape": False,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": False,
    "auto_reload": False,
}
#: the library's filters, in every prompt environment
_FILTERS: dict[str, Callable[..., Any]] = {"quoted": quoted, "num": num, "scores": scores}

#: whether new libraries render the shipped templates outside the sandbox (tests turn it off to
#: compare with the reference: everything in the sandbox)
PACKAGED_FAST_PATH = True

#: whether new libraries write the shipped templates that have a Python writer (`mesa_llm.agents.prompt_texts`:
#: ``observation.j2``, ``memory.j2``, ``act.j2`` and ``plan.j2`` with ``tools.j2``) with it when it applies
#: (tests turn it off to compare with Jinja's rendering of them)
PACKAGED_TEXTS = True
#: the shipped templates written by Python, with their writer: (context, the ``num`` filter) -> text, or None
_TEXT_WRITERS: dict[str, Callable[[dict[str, Any], Callable[[Any], str]], str | None]] = {
    "observation.j2": observation_text,
    "memory.j2": memory_text,
    "act.j2": act_text,
    "plan.j2": plan_text,
}
#: the SHA-256 of the shipped sources each writer was written for (the template and what it includes): a shipped
#: template edited since is rendered by Jinja until its writer is brought up to date (tests/agents/test_prompt_texts.py
#: fails until then)
WRITTEN_FOR: dict[str, dict[str, str]] = {
    "observation.j2": {"observation.j2": "51e7c76a5d054294ff7cd8d6671f311b991c561c2f7306f368d14d628b2caf8f"},
    "memory.j2": {"memory.j2": "915198fea06797461476d2e0b07cc06f81eb9d6e4b969b6fa323470b2c69257c"},
    "act.j2": {"act.j2": "55d55814ef975e8380183086983ee23b33c4c4d9c0cd8661b658b84ef42eef7e",
               "tools.j2": "692f16131eb2ce0d30dadc42071fb851db4908adbb397fb6337c3797650c84c1"},
    "plan.j2": {"plan.j2": "f27b007ddb71c12f5bf19b0a7681d328cd0dd9c7387aef6e81ed27d49c11202b",
                "tools.j2": "692f16131eb2ce0d30dadc42071fb851db4908adbb397fb6337c3797650c84c1"},
}  # fmt: skip
#: per template name, its writer when the shipped sources are those it was written for, else None (made when asked)
_CURRENT_WRITERS: dict[str, Callable[[dict[str, Any], Callable[[Any], str]], str | None] | None] = {}


def _current_writer(name: str) -> Callable[[dict[str, Any], Callable[[Any], str]], str | None] | None:
    """``name``'s writer (`_TEXT_WRITERS`) when every shipped source it was written for is unchanged (`WRITTEN_FOR`),
    else None (Jinja renders it); read once per process."""
    if name not in _CURRENT_WRITERS:
        writer = _TEXT_WRITERS.get(name)
        if writer is not None:
            env = _packaged_env()
            for source_name, digest in WRITTEN_FOR.get(name, {"": ""}).items():
                try:
                    source, _, _ = env.loader.get_source(env, source_name)  # type: ignore[union-attr]
                except jinja2.TemplateNotFound:
                    writer = None
                    break
                if hashlib.sha256(source.encode("utf-8")).hexdigest() != digest:
                    writer = None
                    break
        _CURRENT_WRITERS[name] = writer
    return _CURRENT_WRITERS[name]

#: the environment of the shipped templates (:func:`_packaged_env`), made when first needed
_PACKAGED: list[_PackagedEnvironment] = []


def _packaged_env() -> _PackagedEnvironment:
    """One environment per process for the shipped templates, with the options and filters every
    :class:`PromptLibrary` gives its sandbox."""
    if not _PACKAGED:
        env = _PackagedEnvironment(loader=jinja2.FileSystemLoader(str(prompts_dir())), **_ENV_OPTIONS)
        env.filters.update(_FILTERS)
        _PACKAGED.append(env)
    return _PACKAGED[0]


class _OverrideLoader(jinja2.BaseLoader):
    """Serves specific template names from specific files (a persona's or scenario's overrides)."""

    def __init__(self, overrides: Mapping[str, Path]) -> None:
        self.overrides = dict(overrides)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        path = self.overrides.get(template)
        if path is None:
            raise jinja2.TemplateNotFound(template)
        return _read_template(path, template), str(path), lambda: True


def _read_template(path: Path, name: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise PromptError(f"prompt override {name!r}: cannot read {path.name}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise PromptError(f"prompt override {name!r}: {path.name} is larger than {MAX_TEMPLATE_BYTES // 1024} KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"prompt override {name!r}: {path.name} is not UTF-8 (byte offset {exc.start})") from None


def resolve_overrides(
    overrides: Mapping[str, str | Path], base_dir: Path | None, role: str | None = None
) -> dict[str, Path]:
    """Map logical names (``act``, ``system``, ...) or template file names to override files.

    Override paths are relative to ``base_dir`` (the scenario's folder) and must stay inside it or
    inside the packaged ``prompts/`` folder: absolute paths, ``..`` escapes, symlinks leading out,
    folders and devices are refused with a :class:`PromptError` naming the override.
    """
    roots = [r.resolve() for r in ([base_dir] if base_dir is not None else []) + [prompts_dir()]]
    out: dict[str, Path] = {}
    for name, file in overrides.items():
        if name in LOGICAL_TEMPLATES:
            pattern = LOGICAL_TEMPLATES[name]
            if "{role}" in pattern:
                if role is None:
                    raise PromptError(f"prompt override {name!r} needs a role")
                pattern = pattern.format(role=role)
            target = pattern
        else:
            target = name if name.endswith(".j2") else f"{name}.j2"
            if not _safe_template_name(target):
                raise PromptError(
                    f"prompt override {name!r}: not a template name (use one of {', '.join(LOGICAL_TEMPLATES)})"
                )
        out[target] = _confined(name, str(file), roots)
    return out


def _safe_template_name(name: str) -> bool:
    parts = name.split("/")
    return all(p and p not in (".", "..") and p.replace("_", "").replace("-", "").replace(".", "").isalnum() for p in parts)


def _confined(name: str, file: str, roots: list[Path]) -> Path:
    """The override file, if it is a regular file inside one of ``roots`` (relative paths only)."""
    raw = Path(file)
    if raw.is_absolute() or file.startswith("~"):
        raise PromptError(f"prompt override {name!r}: {file!r} must be relative to the scenario's folder")
    escaped = False
    for root in roots:
        candidate = (root / raw).resolve()  # follows symlinks: a link out of the folder escapes
        if not candidate.is_relative_to(root):
            escaped = True
            continue
        if candidate.is_file():
            return candidate
        if candidate.exists():
            raise PromptError(f"prompt override {name!r}: {file!r} is not a regular file")
    if escaped:
        raise PromptError(f"prompt override {name!r}: {file!r} leaves the scenario's folder")
    raise PromptError(f"prompt override {name!r}: file not found: {file}")


class PromptLibrary:
    """Renders the prompt templates: ``texts`` first (template name -> source, e.g. a replay's, from
    its recording), then overrides, then extra folders, then the shipped ones."""

    def __init__(
        self,
        overrides: Mapping[str, Path] | None = None,
        search_paths: list[Path] | None = None,
        texts: Mapping[str, str] | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.texts = dict(texts or {})
        self.search_paths = [*(search_paths or []), prompts_dir()]
        self._loader = jinja2.ChoiceLoader(
            [
                jinja2.DictLoader(self.texts),
                _OverrideLoader(self.overrides),
                jinja2.FileSystemLoader([str(p) for p in self.search_paths]),
            ]
        )
        self.env = PromptSandbox(loader=self._loader, **_ENV_OPTIONS)
        self.env.filters.update(_FILTERS)
        self._templates: dict[str, jinja2.Template] = {}
        #: per template name: the shipped template to render it with outside the sandbox, when this
        #: library's source of it and of all it includes is the shipped one (:meth:`_packaged`);
        #: None for a template of the library's own (an override, a folder, a text)
        self._packaged_templates: dict[str, jinja2.Template | None] = {}
        #: rendering shipped templates outside the sandbox (False: everything renders in it, the
        #: reference the fast path is compared with)
        self.packaged_fast_path = PACKAGED_FAST_PATH
        #: writing the shipped templates that have one with their Python writer (`_TEXT_WRITERS`) when it applies,
        #: on the fast path only (False: Jinja renders them, the reference the writers are compared with)
        self.packaged_texts = PACKAGED_TEXTS

    def with_overrides(self, overrides: Mapping[str, Path]) -> PromptLibrary:
        """A library with more overrides on top of this one's (for one persona)."""
        if not overrides:
            return self
        return PromptLibrary({**self.overrides, **overrides}, self.search_paths[:-1], self.texts)

    def render(self, name: str, **context: Any) -> str:
        """Render template ``name`` (a file name such as ``act.j2``) with ``context``, within the
        sandbox's budget; PromptError (one line naming the template and the reason) on failure."""
        if name in self._packaged_templates:
            packaged = self._packaged_templates[name]
        else:
            packaged = self._packaged_templates[name] = self._packaged(name)
        if packaged is not None and self.packaged_fast_path:
            return self._render_packaged(name, packaged, context)
        template = self._templates.get(name)
        if template is None:
            template = self._compile(name)
            self._templates[name] = template
        budget, token = start_render()
        chunks: list[str] = []
        size = 0
        try:
            stream = template.generate(**context)  # a generator: closed below if cut short
            try:
                for chunk in stream:  # counted as it streams: an oversized prompt is never built
                    size += len(chunk)
                    if size > MAX_PROMPT_CHARS:
                        raise budget.fail(f"rendered more than {MAX_PROMPT_CHARS:,} characters")
                    chunks.append(chunk)
            finally:
                stream.close()  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - whatever a template's expressions raise, one line
            raise PromptError(self._failure(name, exc)) from None
        finally:
            end_render(token)
        return "".join(chunks).strip()

    def _render_packaged(self, name: str, template: jinja2.Template, context: dict[str, Any]) -> str:
        """:meth:`render` of a shipped template outside the sandbox: the same text, the same
        PromptError for a failure (a variable the context lacks, at the template's line), the same
        cap on its length. Its root render function is run as ``Template.generate`` runs it (without
        the generator around it) and joined at once: the package's templates over the world's
        bounded data cannot build a huge prompt, so the length is checked once, on the result. A template
        with a Python writer (`_TEXT_WRITERS`) is written by it when it applies (the same text; else Jinja)."""
        writer = _current_writer(name) if self.packaged_texts else None
        if writer is not None:
            written = writer(context, num)
            if written is not None and len(written) <= MAX_PROMPT_CHARS:
                return written.strip()
        try:
            try:
                text = "".join(template.root_render_func(template.new_context(context)))
            except Exception:  # noqa: BLE001 - with the template's own lines, as generate() raises it
                template.environment.handle_exception()
            if len(text) > MAX_PROMPT_CHARS:
                raise TemplateBudgetError(f"rendered more than {MAX_PROMPT_CHARS:,} characters")
        except Exception as exc:  # noqa: BLE001 - whatever a template's expressions raise, one line
            raise PromptError(self._failure(name, exc)) from None
        return text.strip()

    def _packaged(self, name: str) -> jinja2.Template | None:
        """The shipped template ``name`` compiled outside the sandbox, when this library would render
        exactly it: its source here is the shipped file's, and so is that of every template it
        includes, imports or extends (followed through them); None otherwise (an override, a folder
        or a text of the library's own anywhere in it, a name computed at render time, a template
        that is not shipped or does not compile: the sandbox renders those, and reports them)."""
        packaged = _packaged_env()
        names, seen = [name], set()
        try:
            while names:
                current = names.pop()
                if current in seen:
                    continue
                seen.add(current)
                source, _, _ = self._loader.get_source(self.env, current)
                shipped, _, _ = packaged.loader.get_source(packaged, current)  # type: ignore[union-attr]
                if source != shipped:
                    return None
                referenced = list(jinja2.meta.find_referenced_templates(packaged.parse(source)))
                if None in referenced:
                    return None
                names.extend(r for r in referenced if r is not None)
            return packaged.get_template(name)
        except Exception:  # noqa: BLE001 - not found, not UTF-8, a syntax error: the sandbox's to report
            return None

    def preload(self, role: str) -> None:
        """Compile every template an agent of ``role`` renders (before the first step, not in it)."""
        for pattern in LOGICAL_TEMPLATES.values():
            name = pattern.format(role=role)
            if name not in self._templates:
                try:
                    self._templates[name] = self._compile(name)
                except _NotFound:
                    continue  # reported when (if ever) it is rendered

    def _compile(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            raise _NotFound(f"prompt template not found: {exc.name}") from None
        except Exception as exc:  # noqa: BLE001 - a syntax error, or nested too deeply for Python
            raise PromptError(self._failure(name, exc)) from None

    def _failure(self, name: str, exc: Exception) -> str:
        """One line saying which template failed where, and why."""
        if isinstance(exc, jinja2.TemplateSyntaxError):  # an included template that does not compile
            return _one_line(f"prompt template {_short_name(exc.filename) or name}, line {exc.lineno}: {exc.message}")
        if isinstance(exc, SyntaxError):  # Python's limits on the code a template compiles to
            return _one_line(f"prompt template {_short_name(exc.filename) or name}: nested too deeply to compile ({exc.msg})")
        if isinstance(exc, TemplateBudgetError):
            reason = str(exc)
        elif isinstance(exc, jinja2.UndefinedError):
            reason = str(exc.message)
        elif isinstance(exc, SecurityError):
            reason = f"refused by the sandbox: {exc}"
        elif isinstance(exc, RecursionError):
            reason = "nested too deeply (Python's recursion limit)"
        elif isinstance(exc, MemoryError):
            reason = "ran out of memory"
        else:  # a template's own expression failed (1/0, a bad format string, a missing include)
            reason = f"{type(exc).__name__}: {exc}"
        return _one_line(f"prompt template {self._where(name, exc)}: {reason}")

    def _where(self, name: str, exc: BaseException) -> str:
        """``name``, and the file and line of the innermost template in ``exc``'s traceback (Jinja
        rewrites its frames to the templates' own lines)."""
        files = {str(path): path.name for path in self.overrides.values()}
        found: tuple[str, int] | None = None
        tb = exc.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            shown = files.get(filename) or self._packaged_name(filename)
            if shown is not None:
                found = (shown, tb.tb_lineno)
            tb = tb.tb_next
        if found is None:
            override = self.overrides.get(name)
            return f"{name} ({override.name})" if override is not None and override.name != name else name
        shown, line = found
        return f"{name}, line {line}" if shown == name else f"{name} ({shown}, line {line})"

    def _packaged_name(self, filename: str) -> str | None:
        for folder in self.search_paths:
            path = Path(filename)
            if path.is_relative_to(folder):
                return path.relative_to(folder).as_posix()
        return None

    def source_hash(self, name: str) -> str:
        """SHA-256 of the source this library would use for template ``name``."""
        try:
            source, _, _ = self._loader.get_source(self.env, name)
        except jinja2.TemplateNotFound:
            raise PromptError(f"prompt template not found: {name}") from None
        return hashlib.sha256(source.encode("utf-8")).hexdigest()

    def template_sources(self, role: str) -> dict[str, str]:
        """The source of every template an agent of ``role`` may render: the logical ones, the
        overrides, and what they extend, include or import (all shipped templates too when a name
        is computed at render time), by template name. The recording header keeps them. A template
        only ever included (:data:`INCLUDED_ONLY`) is kept when something includes it, or when it is
        overridden: a replay of a recording made before it existed finds nothing changed."""
        names = [pattern.format(role=role) for key, pattern in LOGICAL_TEMPLATES.items() if key not in INCLUDED_ONLY]
        names += [*self.texts, *self.overrides]
        sources: dict[str, str] = {}
        dynamic = False
        while names:
            name = names.pop()
            if name in sources:
                continue
            try:
                source, _, _ = self._loader.get_source(self.env, name)
            except jinja2.TemplateNotFound:
                continue  # never rendered, or reported when it is
            sources[name] = source
            try:
                referenced = list(jinja2.meta.find_referenced_templates(self.env.parse(source)))
            except jinja2.TemplateSyntaxError:
                continue  # reported by preload/render
            dynamic = dynamic or None in referenced
            names.extend(r for r in referenced if r is not None)
        if dynamic:
            for path in sorted(prompts_dir().rglob("*.j2")):
                name = path.relative_to(prompts_dir()).as_posix()
                if name not in sources:
                    sources[name] = self._loader.get_source(self.env, name)[0]
        return dict(sorted(sources.items()))

    def template_hashes(self, role: str) -> dict[str, str]:
        """Hashes of every template an agent of ``role`` renders (the recording header keeps them)."""
        names = [pattern.format(role=role) for pattern in LOGICAL_TEMPLATES.values()]
        return {name: self.source_hash(name) for name in names}


class _NotFound(PromptError):
    """A template no override, folder or packaged file provides."""


def _short_name(filename: str | None) -> str | None:
    """A template's file name without the host's folders (errors and recordings need no more)."""
    return Path(filename).name if filename else None


def _one_line(message: str) -> str:
    """``message`` as one visible line of at most :data:`MAX_ERROR_CHARS` characters (it may
    quote values a template built)."""
    text = visible(message)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
