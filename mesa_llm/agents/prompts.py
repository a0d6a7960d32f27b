"""Prompt templates: Jinja files from the top-level ``prompts/`` folder, overridable per scenario and persona.

Rendering uses ``StrictUndefined``: a template that names a variable the context lacks fails loudly
instead of rendering an empty string. Every template a library can resolve has a SHA-256 of its
source, recorded in the recording header so a replay can tell when prompts changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2

from mesa_llm.resources import prompts_dir

#: logical template names users override, and the files they stand for ({role} is filled in)
LOGICAL_TEMPLATES: dict[str, str] = {
    "system": "system/{role}.j2",
    "system_base": "system/base.j2",
    "observation": "observation.j2",
    "memory": "memory.j2",
    "plan": "plan.j2",
    "act": "act.j2",
    "repair": "repair.j2",
}


class PromptError(ValueError):
    """A template that is missing, does not compile, or needs a variable the context lacks."""


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
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptError(f"prompt override {template!r}: cannot read {path}: {exc}") from None
        mtime = path.stat().st_mtime
        return source, str(path), lambda: path.stat().st_mtime == mtime


def resolve_overrides(overrides: Mapping[str, str | Path], base_dir: Path | None, role: str | None = None) -> dict[str, Path]:
    """Map logical names (``act``, ``system``, ...) or file names to override files (relative to ``base_dir``)."""
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
        path = Path(file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise PromptError(f"prompt override {name!r}: file not found: {path}")
        out[target] = path
    return out


class PromptLibrary:
    """Renders the prompt templates: overrides first, then extra folders, then the shipped ones."""

    def __init__(
        self,
        overrides: Mapping[str, Path] | None = None,
        search_paths: list[Path] | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.search_paths = [*(search_paths or []), prompts_dir()]
        self._loader = jinja2.ChoiceLoader(
            [_OverrideLoader(self.overrides), jinja2.FileSystemLoader([str(p) for p in self.search_paths])]
        )
        self.env = jinja2.Environment(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._templates: dict[str, jinja2.Template] = {}

    def with_overrides(self, overrides: Mapping[str, Path]) -> PromptLibrary:
        """A library with more overrides on top of this one's (for one persona)."""
        if not overrides:
            return self
        return PromptLibrary({**self.overrides, **overrides}, self.search_paths[:-1])

    def render(self, name: str, **context: Any) -> str:
        """Render template ``name`` (a file name such as ``act.j2``) with ``context``."""
        template = self._templates.get(name)
        if template is None:
            try:
                template = self.env.get_template(name)
            except jinja2.TemplateNotFound as exc:
                raise PromptError(f"prompt template not found: {exc.name}") from None
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(f"prompt template {exc.filename or name}, line {exc.lineno}: {exc.message}") from None
            self._templates[name] = template
        try:
            return template.render(**context).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(f"prompt template {name}: {exc.message}") from None

    def preload(self, role: str) -> None:
        """Compile every template an agent of ``role`` renders (before the first step, not in it)."""
        for pattern in LOGICAL_TEMPLATES.values():
            name = pattern.format(role=role)
            if name not in self._templates:
                try:
                    self._templates[name] = self.env.get_template(name)
                except jinja2.TemplateNotFound:
                    continue  # reported when (if ever) it is rendered
                except jinja2.TemplateSyntaxError as exc:
                    raise PromptError(
                        f"prompt template {exc.filename or name}, line {exc.lineno}: {exc.message}"
                    ) from None

    def source_hash(self, name: str) -> str:
        """SHA-256 of the source this library would use for template ``name``."""
        try:
            source, _, _ = self._loader.get_source(self.env, name)
        except jinja2.TemplateNotFound:
            raise PromptError(f"prompt template not found: {name}") from None
        return hashlib.sha256(source.encode("utf-8")).hexdigest()

    def template_hashes(self, role: str) -> dict[str, str]:
        """Hashes of every template an agent of ``role`` renders (the recording header keeps them)."""
        names = [pattern.format(role=role) for pattern in LOGICAL_TEMPLATES.values()]
        return {name: self.source_hash(name) for name in names}
