"""The JWT secret is generated, and required, at the length PyJWT wants for Airflow's HS512: no
InsecureKeyLengthWarning (seven of them on a first start, issue 20). bin/start's own: test_local_start.py."""

from __future__ import annotations

import secrets
import warnings

import jwt
import pytest

from include.vyapar.deploy.init import MIN_SECRET_LENGTH, secret_problems

ALGORITHM = "HS512"  # Airflow's choice when [api_auth] jwt_secret is set (config.yml: jwt_algorithm)


def _sign(secret: str) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jwt.encode({"sub": "admin"}, secret, algorithm=ALGORITHM)
    return [w for w in caught if issubclass(w.category, jwt.InsecureKeyLengthWarning)]


def test_the_generated_secret_signs_without_a_key_length_warning():
    assert _sign(secrets.token_hex(32)) == []  # bin/start's, and .env.example's `openssl rand -hex 32`
    assert _sign(secrets.token_urlsafe(16))  # Airflow's own default (24 characters): warned


@pytest.mark.parametrize("length, refused", [(32, True), (63, True), (64, False)])
def test_compose_preflight_refuses_a_jwt_secret_pyjwt_would_warn_about(length, refused):
    secret = secrets.token_hex(32)[:length]
    problems = [p for p in secret_problems({"AIRFLOW__API_AUTH__JWT_SECRET": secret}) if "JWT" in p.variable]
    assert bool(problems) is refused
    assert bool(_sign(secret)) is refused
    assert MIN_SECRET_LENGTH["AIRFLOW__API_AUTH__JWT_SECRET"] == 64
