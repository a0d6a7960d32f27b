"""Secrets redaction, rule by rule: which environment names hold credentials (numbered too), URL
user:password and token query parameters (encoded names too), the shortest value blanked, every
occurrence blanked, key-shaped strings caught in text shown to people, the environment's keys
included by default."""

from __future__ import annotations

import pytest

from mesa_llm.llm.secrets import (
    MASK,
    MIN_SECRET_LENGTH,
    Redactor,
    environment_secrets,
    is_secret_name,
    public_url,
    strip_url_credentials,
    url_credentials,
)


@pytest.mark.parametrize(
    "name", ["OPENAI_API_KEY", "OPENAI_API_KEY_2", "MY_TOKEN_3", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "GH_PAT", "X_KEY_1"]
)
def test_credential_variable_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "KEYBOARD_LAYOUT", "MONKEY", "TOKENIZERS_PARALLELISM_X"])
def test_ordinary_variable_names(name: str) -> None:
    assert not is_secret_name(name)


def test_environment_secrets_skip_flags_whatever_their_case() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdefgh", "FEATURE_TOKEN": "TRUE", "OTHER_SECRET": "No", "HOME": "/root"}
    assert environment_secrets(env) == ["sk-abcdefgh"]


def test_the_shortest_secret_blanked_is_min_secret_length() -> None:
    exact = "x" * MIN_SECRET_LENGTH
    shorter = "y" * (MIN_SECRET_LENGTH - 1)
    redactor = Redactor([exact, shorter])
    assert redactor.values(f"a {exact} b {shorter}") == f"a {MASK} b {shorter}"


def test_a_six_character_key_is_blanked_and_a_five_character_word_is_not() -> None:
    assert MIN_SECRET_LENGTH == 6
    assert Redactor(["abc123", "short"]).values("abc123 short") == f"{MASK} short"


def test_every_occurrence_is_blanked() -> None:
    assert Redactor(["hunter22secret"]).values("hunter22secret and hunter22secret") == f"{MASK} and {MASK}"


def test_the_call_also_catches_key_shaped_strings() -> None:
    redactor = Redactor([])
    assert "sk-abcdef123456" not in redactor("provider said sk-abcdef123456")
    assert redactor.values("provider said sk-abcdef123456") == "provider said sk-abcdef123456"  # answers untouched


def test_for_provider_includes_the_environment_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIRDPROVIDER_API_KEY", "plainvalue-without-shape")
    assert "plainvalue-without-shape" not in Redactor.for_provider()("echo plainvalue-without-shape")


def test_url_credentials_take_the_pair_the_password_and_a_bare_user_token() -> None:
    assert set(url_credentials("https://alice:pw-secret-1@host/v1")) == {"alice:pw-secret-1", "pw-secret-1"}
    assert url_credentials("https://tok-abcdef@host/v1") == ["tok-abcdef"]
    assert url_credentials("https://host/v1?access_token=t0ken-value&model=x") == ["t0ken-value"]
    assert url_credentials("https://host/v1?access_token=&key=") == []  # empty values are no secrets
    redactor = Redactor.for_provider(None, "https://alice:pw-secret-1@host/v1")
    assert "pw-secret-1" not in redactor("bad password pw-secret-1 for alice")


def test_strip_url_credentials_keeps_no_part_of_a_password_with_an_at_sign() -> None:
    assert strip_url_credentials("https://u:p@ss@host:8000/v1") == "https://host:8000/v1"
    assert strip_url_credentials("https://host/v1") == "https://host/v1"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/v1?key=abc123&model=m", "https://h/v1?key=***&model=m"),
        ("https://h/v1?sig=abc123", "https://h/v1?sig=***"),
        ("https://h/v1?X-Amz-Signature=abc", "https://h/v1?X-Amz-Signature=***"),
        ("https://h/v1?%6Bey=abc123", "https://h/v1?%6Bey=***"),
        ("https://h/v1?key=", "https://h/v1?key="),
        ("https://u:p@h/v1?api_key=z", "https://h/v1?api_key=***"),
    ],
)
def test_public_url_masks_credential_parameters(url: str, shown: str) -> None:
    assert public_url(url) == shown
