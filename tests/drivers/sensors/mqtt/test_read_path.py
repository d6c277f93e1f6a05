"""The read path of LoopedClient: BufferedSocket (paho's small reads from one large recv, socket semantics kept) and
NoFilterMatcher (paho's per-filter callback table, quick while empty)."""

from __future__ import annotations

import socket

import pytest

from drivers.sensors.mqtt import aioloop
from drivers.sensors.mqtt.aioloop import BufferedSocket


class FakeSock:
    def __init__(self, chunks: list[bytes | BaseException]) -> None:
        self.chunks = chunks
        self.calls: list[int] = []
        self.closed = False

    def recv(self, n: int) -> bytes:
        self.calls.append(n)
        item = self.chunks.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item[:n]

    def send(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        self.closed = True


def test_small_reads_come_from_one_recv() -> None:
    inner = FakeSock([b"\x30\x05hello\x40\x02\x00\x01"])
    s = BufferedSocket(inner)
    assert s.recv(1) == b"\x30"
    assert s.recv(1) == b"\x05"
    assert s.buffered() == 9
    assert s.recv(5) == b"hello"
    assert s.recv(100) == b"\x40\x02\x00\x01"  # at most what is buffered, like a socket's recv
    assert s.buffered() == 0
    assert inner.calls == [aioloop.READ_SIZE]


def test_would_block_and_end_of_stream_reach_the_caller() -> None:
    inner = FakeSock([BlockingIOError(), b"ab", b""])
    s = BufferedSocket(inner)
    with pytest.raises(BlockingIOError):
        s.recv(1)
    assert s.recv(1) == b"a"
    assert s.recv(1) == b"b"
    assert s.recv(1) == b""  # the peer closed: paho sees the end of the stream as before
    assert s.pending() == 0


def test_everything_else_goes_to_the_socket() -> None:
    inner = FakeSock([bytearray(b"xyz")])
    s = BufferedSocket(inner)
    assert s.recv(2) == b"xy"
    assert isinstance(s.recv(2), bytes)
    assert s.send(b"1234") == 4
    assert s.calls == inner.calls  # attributes it does not define are the socket's
    s.close()
    assert inner.closed


def test_a_real_socket_pair() -> None:
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        s = BufferedSocket(b)
        a.sendall(b"0123456789")
        assert s.recv(3) == b"012"
        assert s.fileno() == b.fileno()
        assert s.recv(10) == b"3456789"
        with pytest.raises(BlockingIOError):
            s.recv(1)
    finally:
        a.close()
        b.close()


def test_no_filter_matcher_matches_as_paho_once_filled() -> None:
    from paho.mqtt.matcher import MQTTMatcher

    ours, paho = aioloop.NoFilterMatcher(), MQTTMatcher()
    assert list(ours.iter_match("a/b")) == list(paho.iter_match("a/b")) == []
    for m in (ours, paho):
        m["a/+"] = 1
        m["#"] = 2
    for topic in ("a/b", "a", "$SYS/x", "c/d/e"):
        assert sorted(ours.iter_match(topic)) == sorted(paho.iter_match(topic))
