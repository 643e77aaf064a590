"""Account rules, bcrypt and JWT without a server or a database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from grpcdemo.errors import InvalidInput
from userd.domain.accounts import (
    Accounts,
    EmailTaken,
    MissingToken,
    UnknownEmail,
    UserGone,
    WrongPassword,
)
from userd.domain.passwords import PasswordHasher
from userd.domain.tokens import InvalidToken, TokenService, TokenSettings, VerifiedTokens
from userd.domain.validation import normalize_email, normalize_name, validate_password
from userd.storage.memory import InMemoryUserRepository

SECRET = b"k" * 32
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def settings(**overrides: object) -> TokenSettings:
    values: dict[str, object] = {"secret": SECRET, "ttl_seconds": 900, "issuer": "userd", "audience": "demo"}
    values.update(overrides)
    return TokenSettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"), [(" Ann@Example.COM ", "ann@example.com"), ("a.b+c@x.io", "a.b+c@x.io")]
)
def test_email_is_normalised(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "no-at-sign", "a@b", "a@@b.com", "a b@c.com", "x" * 250 + "@e.com"]
)
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(raw)


def test_password_bounds_are_in_bytes() -> None:
    validate_password("12345678")
    validate_password("p" * 72)
    with pytest.raises(InvalidInput, match="at least 8"):
        validate_password("1234567")
    with pytest.raises(InvalidInput, match="at most 72"):
        validate_password("p" * 73)
    with pytest.raises(InvalidInput, match="at most 72"):
        validate_password("é" * 37)  # 74 bytes in UTF-8, 37 characters


def test_name_rules() -> None:
    assert normalize_name("  Ann  ") == "Ann"
    assert normalize_name("n" * 100) == "n" * 100
    for bad in ["", "  ", "n" * 101, "tab\there"]:
        with pytest.raises(InvalidInput):
            normalize_name(bad)


async def test_bcrypt_hash_and_verify() -> None:
    hasher = PasswordHasher(rounds=4)
    hashed = await hasher.hash("correct horse")
    assert hashed.startswith("$2b$04$")
    assert await hasher.verify("correct horse", hashed)
    assert not await hasher.verify("wrong horse", hashed)
    assert not await hasher.verify("correct horse", None)


def test_token_round_trip_and_claims() -> None:
    tokens = TokenService(settings())
    issued = tokens.issue("user-1", datetime.now(UTC))
    assert tokens.verify(issued.token) == "user-1"
    claims = jwt.decode(issued.token, SECRET, algorithms=["HS256"], audience="demo")
    assert set(claims) == {"sub", "iss", "aud", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 900


def test_expired_token_is_refused() -> None:
    tokens = TokenService(settings(ttl_seconds=60))
    issued = tokens.issue("user-1", datetime.now(UTC) - timedelta(seconds=120))
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(issued.token)


def test_wrong_key_audience_and_issuer_are_refused() -> None:
    issued = TokenService(settings()).issue("user-1", datetime.now(UTC))
    for other in [settings(secret=b"z" * 32), settings(audience="other"), settings(issuer="evil")]:
        with pytest.raises(InvalidToken):
            TokenService(other).verify(issued.token)


def test_alg_none_and_other_algorithms_are_refused() -> None:
    now = int(time.time())
    claims = {"sub": "user-1", "iss": "userd", "aud": "demo", "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    hs512 = jwt.encode(claims, SECRET, algorithm="HS512")
    tokens = TokenService(settings())
    for token in [unsigned, hs512, "garbage", ""]:
        with pytest.raises(InvalidToken):
            tokens.verify(token)


def test_token_without_required_claims_is_refused() -> None:
    token = jwt.encode({"sub": "user-1", "iss": "userd", "aud": "demo"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        TokenService(settings()).verify(token)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issued_at = datetime.now(UTC)
    clock = Clock(issued_at.timestamp())
    tokens = TokenService(settings(ttl_seconds=60), VerifiedTokens(now=clock))
    token = tokens.issue("user-1", issued_at).token
    assert tokens.verify(token) == "user-1"

    def no_signature_checks(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("verified again")

    monkeypatch.setattr(jwt, "decode", no_signature_checks)
    clock.now += 59
    assert tokens.verify(token) == "user-1"  # from memory
    # At its expiry the entry is gone and the token is checked again (and refused, here, by the fake).
    clock.now += 1
    with pytest.raises(AssertionError, match="verified again"):
        tokens.verify(token)


def test_a_refused_token_is_never_remembered() -> None:
    verified = VerifiedTokens()
    tokens = TokenService(settings(), verified)
    forged = TokenService(settings(secret=b"z" * 32)).issue("user-1", datetime.now(UTC)).token
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.verify(forged)
    assert len(verified) == 0


def test_the_memory_is_bounded_oldest_first() -> None:
    verified = VerifiedTokens(capacity=2, now=Clock(0))
    for n in range(3):
        verified.remember(f"t{n}", f"user-{n}", expires_at=100)
    assert len(verified) == 2
    assert verified.get("t0") is None
    assert (verified.get("t1"), verified.get("t2")) == ("user-1", "user-2")


@pytest.fixture
def accounts() -> Accounts:
    return Accounts(
        InMemoryUserRepository(), PasswordHasher(rounds=4), TokenService(settings()), clock=lambda: NOW
    )


async def test_register_login_me(accounts: Accounts) -> None:
    user = await accounts.register(" Eve@Example.com", "password1", " Eve ")
    assert (user.email, user.name, user.created_at) == ("eve@example.com", "Eve", NOW)
    with pytest.raises(EmailTaken):
        await accounts.register("eve@example.com", "password2", "Other")


async def test_login_reasons_differ_but_messages_do_not(accounts: Accounts) -> None:
    await accounts.register("eve@example.com", "password1", "Eve")
    with pytest.raises(WrongPassword) as wrong:
        await accounts.login("eve@example.com", "password2")
    with pytest.raises(UnknownEmail) as unknown:
        await accounts.login("nobody@example.com", "password2")
    assert wrong.value.message == unknown.value.message
    assert (wrong.value.reason, unknown.value.reason) == ("invalid_password", "user_not_found")
    with pytest.raises(InvalidInput):
        await accounts.login("eve@example.com", "p" * 73)


async def test_unknown_email_costs_a_bcrypt_check() -> None:
    class CountingHasher(PasswordHasher):
        checks = 0

        async def verify(self, password: str, password_hash: str | None) -> bool:
            CountingHasher.checks += 1
            return await super().verify(password, password_hash)

    accounts = Accounts(InMemoryUserRepository(), CountingHasher(rounds=4), TokenService(settings()))
    with pytest.raises(UnknownEmail):
        await accounts.login("ghost@example.com", "whatever1")
    assert CountingHasher.checks == 1


async def test_me_reasons() -> None:
    repo = InMemoryUserRepository()
    tokens = TokenService(settings())
    accounts = Accounts(repo, PasswordHasher(rounds=4), tokens)
    with pytest.raises(MissingToken):
        await accounts.me(None)
    with pytest.raises(InvalidToken):
        await accounts.me("")
    with pytest.raises(UserGone):
        await accounts.me(tokens.issue("deleted-user", datetime.now(UTC)).token)
    user = await accounts.register("me@example.com", "password1", "Me")
    token = (await accounts.login("me@example.com", "password1")).token
    assert await accounts.me(token) == user
