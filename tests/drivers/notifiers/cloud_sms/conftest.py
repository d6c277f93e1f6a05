"""Messages as the core will hand them over, and a server that takes the request but never answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from daemon.ports.notify import Message

TEXT = "【冷库告警】测试冷库1号库温度9.2℃，高于砂糖橘上限8.0℃已12分钟。回复ACK 17确认"
PARAMS = {"site": "测试冷库", "zone": "1号库", "commodity": "砂糖橘", "value": "9.2", "limit": "8.0",
          "minutes": "12", "id": "17", "sensor": "", "detail": ""}
NOW = 1763812800.0  # 2025-11-22T12:00:00Z
NONCE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def alarm(outbox_id: int = 41, key: str = "alert.temp_high", params: dict[str, str] | None = None,
          address: str = "+8613800138000") -> Message:
    return Message(outbox_id, 17, "zhang", address, TEXT, "zh-CN", key=key,
                   params=PARAMS if params is None else params)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) but never answers: a request that got out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])
