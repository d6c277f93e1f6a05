"""Which topics a sensor reads, where its online state is, and what to listen on for discovery."""

from __future__ import annotations

import json
from collections.abc import Iterable

from drivers.sensors.mqtt.formats import BadPayload
from drivers.sensors.mqtt.schema import MqttSensorConfig

_ONLINE = {"online": True, "true": True, "1": True, "offline": False, "false": False, "0": False}


def tasmota_topic(topic: str) -> str:
    """`coldroom1` is shorthand for Tasmota's default full topic `tele/coldroom1/SENSOR`."""
    return topic if "/" in topic else f"tele/{topic}/SENSOR"


def data_topics(cfg: MqttSensorConfig) -> list[str]:
    """Exact topics that carry this sensor's values."""
    t = cfg.topic.rstrip("/")
    fmt = cfg.registered
    if fmt is not None:
        return list(dict.fromkeys(fmt.topics(t, cfg.format_options)))
    match cfg.format:
        case "tasmota":
            full = tasmota_topic(t)
            head, _, leaf = full.rpartition("/")
            return [full, f"{head}/STATE"] if leaf == "SENSOR" else [full]  # STATE: its Wi-Fi signal
        case "shelly_gen1":
            return [f"{t}/sensor/temperature", f"{t}/sensor/humidity", f"{t}/sensor/error"]
        case "shelly_gen2":
            c = cfg.component
            return [f"{t}/events/rpc", f"{t}/status/temperature:{c}", f"{t}/status/humidity:{c}"]
        case "esphome":
            objects = [*cfg.esphome_objects.values(), *cfg.esphome_device_objects.values()]
            return [f"{t}/sensor/{o}/state" for o in dict.fromkeys(objects)]
        case _:
            return [t]


def availability_topic(cfg: MqttSensorConfig) -> str | None:
    """The device's online/offline topic, or None when the format has none worth following."""
    if not cfg.availability:
        return None
    if cfg.availability_topic:
        return cfg.availability_topic
    t = cfg.topic.rstrip("/")
    match cfg.format:
        case "tasmota":
            full = tasmota_topic(t)
            head, _, leaf = full.rpartition("/")
            return f"{head}/LWT" if leaf == "SENSOR" else None
        case "zigbee2mqtt":
            return f"{t}/availability"
        case "esphome":
            return f"{t}/status"
        case "shelly_gen2":
            return f"{t}/online"
        case _:
            # shelly_gen1 H&T sleeps between reports (its `online` is false most of the time);
            # homeassistant/json have no standard device topic: set availability_topic.
            return None


def discovery_filters(cfg: MqttSensorConfig) -> list[str]:
    """Wildcards next to this sensor's topics, so other devices of its kind show up as unmapped."""
    t = cfg.topic.rstrip("/")
    levels = t.split("/")
    fmt = cfg.registered
    if fmt is not None and fmt.discovery is not None:
        return [f for topic in data_topics(cfg) for f in fmt.discovery(topic)]
    match cfg.format:
        case "tasmota":
            full = tasmota_topic(t).split("/")
            return ["/".join([full[0], "+", *full[2:]])] if len(full) >= 3 else [tasmota_topic(t)]
        case "zigbee2mqtt":
            return ["/".join([*levels[:-1], "+"])] if len(levels) >= 2 else [t]
        case "shelly_gen1":
            return ["/".join([*levels[:-1], "+", "sensor", "+"])]
        case "shelly_gen2":
            return ["+/events/rpc"]
        case "esphome":
            return ["+/sensor/+/state"]
        case _:
            if len(levels) >= 3:
                return ["/".join([*levels[:-2], "+", levels[-1]])]
            return ["/".join([*levels[:-1], "+"])] if len(levels) == 2 else [t]


def covers(pattern: str, topic_filter: str) -> bool:
    """True if every topic matched by `topic_filter` is also matched by `pattern`."""
    p, f = pattern.split("/"), topic_filter.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(f):
            return False
        if part != "+" and (part != f[i] or f[i] in ("+", "#")):
            return False
        if part == "+" and f[i] == "#":
            return False
    return len(p) == len(f)


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic matching for one concrete topic."""
    return covers(topic_filter, topic)


def minimal(filters: Iterable[str]) -> list[str]:
    """Drop filters covered by another one, so a broker that sends one copy per match sends one."""
    uniq = list(dict.fromkeys(filters))
    return [f for f in uniq if not any(g != f and covers(g, f) for g in uniq)]


def parse_online(payload: bytes) -> bool:
    """Tasmota `Online`/`Offline`, z2m `{"state":"online"}` or legacy `online`, ESPHome, Shelly `true`."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadPayload("availability not UTF-8 text") from None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            raise BadPayload("availability not JSON") from None
        state = obj.get("state") if isinstance(obj, dict) else None
        if not isinstance(state, str):
            raise BadPayload("availability JSON without a \"state\" text")
        text = state
    state = _ONLINE.get(text.lower())
    if state is None:
        raise BadPayload(f"availability {text[:20]!r} is neither online nor offline")
    return state
