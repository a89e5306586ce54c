"""Credentials are masked in URIs and in any text quoting them."""

import pytest

from models.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:secret@mlflow.example/", "http://***@mlflow.example/"),
        ("https://token@mlflow.example:5000", "https://***@mlflow.example:5000"),
        ("postgresql://cvm:s3cret@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("mysql+pymysql://u:p@ss@db/mlflow", "mysql+pymysql://***@db/mlflow"),  # "@" in it
        (
            "postgresql://db/mlflow?user=cvm&password=s3cret&sslmode=require",
            "postgresql://db/mlflow?user=cvm&password=***&sslmode=require",
        ),
        (
            "host=db user=cvm password=s3cret dbname=mlflow",
            "host=db user=cvm password=*** dbname=mlflow",
        ),
        ("dbname=mlflow PASSWORD='two words'", "dbname=mlflow PASSWORD=***"),
        (
            "API request to http://user:secret@127.0.0.1:9/api/2.0/mlflow/x failed",
            "API request to http://***@127.0.0.1:9/api/2.0/mlflow/x failed",
        ),
        ("url='http://a:b@h/x'", "url='http://***@h/x'"),
        # nothing secret: unchanged
        ("sqlite:////data/a@b/mlflow.db", "sqlite:////data/a@b/mlflow.db"),
        ("http://mlflow.example/path?by=a@b", "http://mlflow.example/path?by=a@b"),
        ("mailto:ops@example.com", "mailto:ops@example.com"),
        ("file:///data/artifacts", "file:///data/artifacts"),
        ("POST /v1/customers/score 200 1.20ms", "POST /v1/customers/score 200 1.20ms"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_redact_takes_any_object():
    assert redact(ValueError("cannot reach http://u:p@h/")) == "cannot reach http://***@h/"
