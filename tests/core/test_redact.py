import pytest
from gitops_ml.core.redact import redact


@pytest.mark.parametrize(("text", "shown"), [
    ("https://ana:s3cret@mlflow.example.com/", "https://***@mlflow.example.com/"),
    ("postgresql://u:p%40ss@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
    ("could not reach http://bot:tok@127.0.0.1:5000 (timeout)", "could not reach http://***@127.0.0.1:5000 (timeout)"),
    ("s3://bucket/x?X-Amz-Signature=abc&sig=def&a=1", "s3://bucket/x?X-Amz-Signature=***&sig=***&a=1"),
    ("https://h/p?token=abc123", "https://h/p?token=***"),
    ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    (None, None),
])
def test_credentials_are_masked_and_nothing_else_changes(text, shown):
    assert redact(text) == shown


def test_a_password_never_survives_in_a_longer_message():
    message = "listing versions failed at https://prod:hunter2@mlflow.internal: 403"
    assert "hunter2" not in redact(message) and "prod" not in redact(message)
