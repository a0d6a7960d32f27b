"""A global OpenAI config set in litellm between two calls sends the next call down litellm's full
path (the lean path's answer about ``OpenAIConfig.get_config()`` is reused only while the class's
attributes are unchanged)."""

from __future__ import annotations

import pytest

from mesa_llm.llm.direct import direct_path_applies
from mesa_llm.llm.litellm_backend import _litellm

PARAMS = {"tools", "tool_choice", "temperature"}


def _applies() -> bool:
    return direct_path_applies(_litellm(), "openai/fake-model", "http://127.0.0.1:9/v1", PARAMS)


def test_a_config_set_between_calls_takes_effect_on_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _litellm()
    assert litellm.OpenAIConfig.get_config() == {}
    assert _applies() and _applies()  # asked twice: the second answer is the remembered one
    monkeypatch.setattr(litellm.OpenAIConfig, "temperature", 0.3)
    assert not _applies()  # fails when the answer is remembered across a change
    monkeypatch.setattr(litellm.OpenAIConfig, "temperature", None)
    assert _applies()
    monkeypatch.setattr(litellm.OpenAIConfig, "extra_setting", 7, raising=False)  # a new attribute
    assert not _applies()
    monkeypatch.delattr(litellm.OpenAIConfig, "extra_setting")
    assert _applies()


def test_a_private_attribute_does_not_count_but_its_rename_does(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _litellm()
    monkeypatch.setattr(litellm.OpenAIConfig, "_private_setting", 5, raising=False)
    assert _applies()  # get_config skips names starting with "_"
    monkeypatch.delattr(litellm.OpenAIConfig, "_private_setting")
    monkeypatch.setattr(litellm.OpenAIConfig, "public_setting", 5, raising=False)
    assert not _applies()


@pytest.mark.parametrize(
    "name", ["MESA_LLM_LITELLM_FULL_PATH", "OPENAI_ORGANIZATION", "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"]
)
def test_an_environment_setting_made_between_calls_is_seen_on_the_next(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(name, raising=False)
    assert _applies() and _applies()
    monkeypatch.setenv(name, "1")
    assert not _applies()
    monkeypatch.setenv(name, "")  # empty: as unset, as os.environ.get's answer was read
    assert _applies()
    monkeypatch.delenv(name)
    assert _applies()


@pytest.mark.parametrize(
    "name",
    ["callbacks", "success_callback", "failure_callback", "_async_success_callback", "_async_failure_callback",
     "input_callback", "service_callback", "headers", "api_key", "openai_key", "api_base", "organization",
     "aclient_session", "network_mock", "model_alias_map"],
)
def test_each_litellm_global_sends_calls_down_the_full_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _applies()
    monkeypatch.setattr(_litellm(), name, ["x"] if name.endswith("callback") or name == "callbacks" else "x", raising=False)
    assert not _applies()


def test_a_global_the_module_serves_lazily_is_asked_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name missing from the module's namespace is asked of the module itself (its ``__getattr__``),
    as ``getattr`` always did: one set that way sends calls down the full path too."""
    import types

    from mesa_llm.llm import direct

    module = types.ModuleType("lazy_litellm")
    for name in direct._LITELLM_GLOBALS:
        setattr(module, name, None)
    assert not direct._any_global(module)
    del module.headers
    assert not direct._any_global(module)  # missing and not served: unset
    module.__getattr__ = lambda name: {"x": "1"} if name == "headers" else None  # type: ignore[method-assign]
    assert direct._any_global(module)  # fails when only the namespace is read
    module.headers = None
    assert not direct._any_global(module)
    module.network_mock = True
    assert direct._any_global(module)
