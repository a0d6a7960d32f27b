"""A template's globals are one plain dict (the sandbox's, with the template's own over them):
rendering does not flatten a ChainMap each time, the sandbox's checked globals still apply, and a
template's own globals never reach the environment's."""

from __future__ import annotations

import pytest

from mesa_llm.agents.prompts import PromptError, PromptLibrary


def test_a_templates_globals_are_a_plain_dict_with_the_sandboxes() -> None:
    library = PromptLibrary(texts={"t.j2": "{{ range(3) | list }}"})
    assert library.render("t.j2") == "[0, 1, 2]"
    template = library._templates["t.j2"]
    assert type(template.globals) is dict  # a ChainMap is flattened on every render (fails on the old code)
    assert template.globals["range"] is library.env.globals["range"]  # the sandbox's checked range


def test_the_sandboxes_globals_still_refuse() -> None:
    library = PromptLibrary(texts={"big.j2": "{{ range(10 ** 9) | list | length }}", "lip.j2": "{{ lipsum() }}"})
    with pytest.raises(PromptError):
        library.render("big.j2")
    with pytest.raises(PromptError):
        library.render("lip.j2")


def test_a_templates_own_globals_stay_its_own() -> None:
    library = PromptLibrary(texts={"t.j2": "{{ x }}", "u.j2": "{{ x is defined }}"})
    template = library.env.get_template("t.j2", globals={"x": 7})
    assert template.render() == "7"
    assert "x" not in library.env.globals
    assert library.render("u.j2") == "False"
