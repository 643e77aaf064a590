from __future__ import annotations

import pytest
from grpcdemo.runtime.config import ConfigError
from orderd import config as orderd_config
from userd import config as userd_config

SECRET = "s" * 32


def test_userd_defaults() -> None:
    cfg = userd_config.load({"JWT_SECRET": SECRET})
    assert str(cfg.common.grpc_addr) == "127.0.0.1:50051"
    assert str(cfg.common.metrics_addr) == "127.0.0.1:9091"
    assert cfg.jwt_ttl_seconds == 900
    assert cfg.bcrypt_rounds == 12
    assert cfg.common.database_url.startswith("sqlite+aiosqlite:///.data/")
    assert SECRET not in repr(cfg)


def test_orderd_defaults() -> None:
    cfg = orderd_config.load({})
    assert str(cfg.common.grpc_addr) == "127.0.0.1:50052"
    assert str(cfg.common.metrics_addr) == "127.0.0.1:9092"
    assert str(cfg.userd_addr) == "127.0.0.1:50051"


def test_missing_or_short_jwt_secret_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET is required"):
        userd_config.load({})
    with pytest.raises(ConfigError, match="too short"):
        userd_config.load({"JWT_SECRET": "short"})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS"),
        ({"BCRYPT_ROUNDS": "twelve"}, "BCRYPT_ROUNDS"),
        ({"JWT_TTL_SECONDS": "0"}, "JWT_TTL_SECONDS"),
        ({"GRPC_ADDR": "nohost"}, "GRPC_ADDR"),
        ({"GRPC_ADDR": "h:99999"}, "GRPC_ADDR"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        userd_config.load({"JWT_SECRET": SECRET, **env})
