"""What a viewer sees of the configuration file (``dropins.admin.redact``)."""

from __future__ import annotations

from dropins.admin.redact import HIDDEN, redact_secrets

CONFIG = '''name = "shop"  # kept
[services.site]
path = "public"
auth = ["memory:alice:pw",
  "file:users"]
api_token = "abc#def"  # a comment
[services.mail]
listen = "tcp:25"
'''


def test_secret_values_are_hidden_and_line_numbers_kept() -> None:
    text = redact_secrets(CONFIG)
    assert "alice:pw" not in text and "abc" not in text and "file:users" not in text
    assert f"auth = {HIDDEN}" in text and f"api_token = {HIDDEN}" in text
    assert 'name = "shop"  # kept' in text and 'path = "public"' in text
    assert 'listen = "tcp:25"' in text
    assert len(text.splitlines()) == len(CONFIG.splitlines())


def test_yaml_keys_too() -> None:
    assert redact_secrets("users:\n  password: hunter2\n") == f"users:\n  password: {HIDDEN}\n"
