"""The config file's schema (pydantic): site, storage, zones, alarms, contacts, escalation, API.

Driver-specific options live beside each driver (`drivers/*/.../schema.py`); `loader.py`
assembles them by `type:` from the registry it is given and checks the rules that span
entries (unique ids, zones that exist, commodities in the catalog).
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator, model_validator

from daemon.config.catalog import Commodity, load_catalog
from daemon.ports.broker import MqttConfig
from daemon.ports.durations import Duration
from daemon.ports.notify import NotifierBase
from daemon.ports.secrets import SecretRef
from daemon.ports.sinks import SinkBase
from daemon.ports.sources import SENSOR_ID, SensorBase
from daemon.ports.tls import TlsConfig

LANGS = ("zh-CN", "en")
Lang = Literal["zh-CN", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


SGLN = r"^urn:epc:id:sgln:[0-9]+\.[0-9]*\.[!-~]+$"


class GeoPoint(_Strict):
    """Where the center is, for the regional hub's map (WGS 84 degrees)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Capacity(_Strict):
    """How much a cold room holds, for the hub's free-capacity view."""

    value: float = Field(gt=0)
    unit: Literal["t", "pallets", "m3"]


class SiteConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID, description="short id, used as the InfluxDB `site` tag")
    name: str = Field(description="shown in SMS and pages, e.g. 奉节县草堂镇冷库")
    timezone: str = "Asia/Shanghai"
    language: Lang = "zh-CN"
    location: GeoPoint | None = Field(None, description="lat/lon of the center, sent to the regional hub")
    sgln: str | None = Field(None, pattern=SGLN, description="GS1 SGLN URI of the site for EPCIS events; "
                             "default urn:coldchain:site:<id>")
    kind: Literal["center", "vehicle"] = Field(
        "center", description="center: a collection center's cold rooms; vehicle: a reefer truck or insulated box "
        "running this daemon, its zones the compartments (docs/transfers.md, A vehicle box)")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}; e.g. 'Asia/Shanghai'") from exc
        return v


class StorageConfig(_Strict):
    journal: Path = Field(Path("/var/lib/coldchain/journal.db"), description="SQLite journal file")
    min_free_mb: int = Field(200, ge=1, description="box-health alarm below this much free disk")
    reserve_mb: int = Field(
        8, ge=0, le=1024,
        description="disk space held beside the journal and given back when the disk is full, so alarms and "
        "their SMS can still be stored (readings may use half of it); 0 = off",
    )
    raw_retention: Duration = Field(90 * 86400.0, description="keep raw readings this long")
    rollup_retention: Duration = Field(
        731 * 86400.0,
        description="keep the 5-minute and hourly min/mean/max of readings this long (EN 12830: >= 1 year)",
    )
    flush_interval: Duration = Field(
        60.0, ge=0, le=300,
        description="readings of sources that acknowledge only what is committed (MQTT QoS 1): longest wait "
        "before a batch of quiet ones is written (a reading that changes an alarm is written at once; the live "
        "page sees every reading on arrival; lot, report and period figures commit what waits first); the broker "
        "resends what a power cut lost, so this is latency of the history and the uplinks, not loss. Sooner when "
        "3/4 of the broker's in-flight window awaits acknowledgement (mqtt.receive_maximum on MQTT 5, "
        "mqtt.broker_inflight on 3.1.1, or a smaller window the broker was seen to keep to). 60 s since "
        "session 12 (a commit of a few readings writes a few KiB to the SD card: 5 s, the default of session 11, "
        "wrote 1,175 B per reading at 50 MQTT sensors / 1 min); 0 = as soon as the previous commit is done "
        "(group commit: fastest MQTT acknowledgements, many more writes at low rates) (docs/robustness.md)",
    )
    commit_interval: Duration = Field(
        60.0, ge=0, le=600,
        description="readings of polled sources (Modbus, serial, simulated), which no one resends: longest wait "
        "before they are written, i.e. at most this much of them is lost in a power cut; longer = fewer writes "
        "to the SD card (docs/robustness.md)",
    )
    roll_interval: Duration = Field(
        24 * 3600.0, ge=60, le=7 * 86400,
        description="longest time between two rolls of readings into the rollups and the series index (sooner "
        "on a big center); each roll writes a page per series, so more often = more SD card writes",
    )
    batch_max: int = Field(1000, ge=1, le=100_000)


class TemperatureAlarms(_Strict):
    """None means 'from the commodity'; set a number to override it."""

    high: float | None = None
    low: float | None = None
    freeze: float | None = Field(None, description="critical low limit; default: the freezing point")
    delay: Duration = Field(600.0, description="out of range this long before an alarm fires")
    freeze_delay: Duration = 120.0
    clear_delay: Duration = Field(300.0, description="back in range this long before it clears")
    hysteresis: float = Field(0.5, ge=0)


class HumidityAlarms(_Strict):
    enabled: bool = True
    high: float | None = None
    low: float | None = None
    delay: Duration = 3600.0
    clear_delay: Duration = 600.0
    hysteresis: float = Field(2.0, ge=0)


class DefrostWindow(_Strict):
    """A scheduled defrost: the air warms on purpose, so high-temperature and rate alarms wait."""

    start: str = Field(pattern=r"^([01]?\d|2[0-3]):[0-5]\d$", description="HH:MM, site time zone")
    duration: Duration = Field(gt=0)
    recovery: Duration = Field(900.0, description="grace after the window while the room cools again")


class ExposureRule(_Strict):
    """Cumulative exposure (WHO PQS E006 style): total time beyond a value within a rolling window."""

    above: float | None = None
    below: float | None = None
    total: Duration = Field(gt=0, description="alarm when the time beyond the value reaches this")
    window: Duration = Field(86400.0, gt=0)

    @model_validator(mode="after")
    def _one(self) -> ExposureRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.total > self.window:
            raise ValueError("total cannot exceed window")
        return self


class RateRule(_Strict):
    """A steady climb (a failing compressor) shows before any limit is reached."""

    rise_per_hour: float = Field(gt=0, description="°C per hour")
    over: Duration = Field(1800.0, gt=0, description="measured over this long")


class BandRule(_Strict):
    """A damage band inside the 'warm' side, e.g. plums break down between 2 and 7 °C."""

    low: float
    high: float
    delay: Duration = 3600.0
    source: str | None = None


class ZoneAlarms(_Strict):
    temperature: TemperatureAlarms = Field(default_factory=TemperatureAlarms)
    humidity: HumidityAlarms = Field(default_factory=HumidityAlarms)
    no_data: bool = Field(True, description="alarm when a sensor stops reporting (its stale_after)")
    stuck_after: Duration | None = Field(
        3 * 3600.0, description="a sensor repeating the exact same value this long is faulty"
    )
    fault_after: int = Field(3, ge=1, description="consecutive error values before a sensor-fault alarm")
    defrost: list[DefrostWindow] = Field(default_factory=list)
    exposure: list[ExposureRule] = Field(default_factory=list)
    rate: RateRule | None = None
    bands: list[BandRule] | None = Field(None, description="default: the commodity's bands (commodity_rules.yaml)")


class PrecoolConfig(_Strict):
    """A precooling room (预冷): which of its sensors are pulp probes and which measure the cooling air.

    Runs, their figures and the too-slow alarm: docs/precooling.md."""

    pulp: list[str] = Field(min_length=1, description="sensor ids of the pulp probes pushed into the produce")
    supply_air: list[str] = Field(min_length=1, description="sensor ids in the cooling (supply) air stream")
    start_on_check_in: bool = Field(True, description="a lot checked into this room starts a run (if none is open)")
    seven_eighths_target: Duration | None = Field(
        None, gt=0, description="7/8 cooling within this long, else an alarm; default: the commodity's "
        "(config/precooling.csv); none there and none here: measured, never called too slow")


class ZoneConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID)
    name: str
    name_en: str | None = None
    commodity: str | None = None
    alarms: ZoneAlarms = Field(default_factory=ZoneAlarms)
    precool: PrecoolConfig | None = Field(None, description="this room precools produce: docs/precooling.md")
    capacity: Capacity | None = Field(None, description="how much the room holds, e.g. {value: 40, unit: t}")
    sgln: str | None = Field(None, pattern=SGLN, description="GS1 SGLN URI of the room for EPCIS events; "
                             "default urn:coldchain:site:<site>:zone:<id>")

    def display_name(self, lang: str) -> str:
        return self.name_en if (self.name_en and not lang.startswith("zh")) else self.name


class ContactConfig(_Strict):
    id: str = Field(pattern=SENSOR_ID)
    name: str
    phone: str | None = Field(None, pattern=r"^\+?[0-9]{5,16}$")
    language: Lang | None = None
    device_alarms: bool = Field(
        False, description="this contact (the installer) is told of device alarms such as a low battery; "
        "without any such contact they go to the first escalation step's contacts")


class EscalationStep(_Strict):
    after: Duration = Field(0.0, description="time since the alarm fired before this step")
    contacts: list[str]
    notifiers: list[str] = Field(default_factory=list, description="channels, tried in order")


class EscalationConfig(_Strict):
    steps: list[EscalationStep] = Field(default_factory=list)
    repeat: Duration | None = Field(None, description="repeat the last step this often while unacknowledged")
    notify_ack: bool = Field(True, description="tell everyone who was paged when someone acknowledges")
    reply_to_ack: bool = Field(True, description="confirm an SMS acknowledgement with a short reply")
    max_attempts: int = Field(8, ge=1, le=100, description="tries on the last channel before giving up")
    retry_after: Duration = Field(30.0, gt=0, description="first retry delay; doubles up to 15 min")

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        afters = [s.after for s in steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return steps


class AlarmWorkflowConfig(_Strict):
    """The HACCP follow-up of an alarm: acknowledge (with a comment), corrective action, a manager's close;
    and what an acknowledged alarm that keeps going does (it fires again and pages from step 0)."""

    ack_comment_required: bool = Field(
        True, description="an acknowledgement from the page or API must say what is being done (an SMS "
        "acknowledgement's comment is the SMS text)")
    reescalate_after: Duration | None = Field(
        7200.0, gt=0, description="acknowledged but still out of range this long: page again; null: never")
    reescalate_rise: float | None = Field(
        2.0, gt=0, description="acknowledged and then this much further beyond the value at acknowledgement "
        "(°C or %RH): page again at once; null: never")


class ApiToken(_Strict):
    """A person or system allowed to change things through the API."""

    name: str = Field(description="recorded in the audit log as who did it")
    role: Literal["staff", "manager", "installer"]
    token: SecretRef


class SignInConfig(_Strict):
    """People signing in to the pages with a password (`coldchain user add`); tokens stay for machines."""

    reads_need_sign_in: bool = Field(
        False, description="false (default): reads stay open on the LAN as before, writes need a sign-in or a "
                           "token; true: every page and read needs one too (the public trace page stays open)")
    max_failures: int = Field(5, ge=1, description="wrong passwords within failure_window that lock the name")
    failure_window: Duration = Field(900.0, gt=0, description="the window the failures are counted in")
    lockout: Duration = Field(900.0, gt=0, description="how long a name stays locked (or `coldchain user unlock`)")
    session_idle: Duration = Field(8 * 3600.0, gt=0, description="a session unused this long ends")
    session_max: Duration = Field(7 * 86400.0, gt=0, description="a session ends this long after sign-in anyway")
    secure_cookie: bool = Field(False, description="mark the cookies Secure: set it when the box is behind HTTPS")


class ApiConfig(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: list[ApiToken] = Field(default_factory=list, description="without tokens the API is read-only")
    public_url: str | None = Field(None, pattern=r"^https?://", description="base URL buyers reach, for QR codes")
    sign_in: SignInConfig = Field(default_factory=SignInConfig)


ReportFormat = Literal["pdf", "csv"]


class ReportSchedule(_Strict):
    """A compliance report made on the box after each day, week or month, kept there and sent (issue #15)."""

    id: str = Field(pattern=SENSOR_ID, description="names the run in the audit log and the files")
    period: Literal["day", "week", "month"]
    at: str = Field("06:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                    description="site time on the day after the period ends when the report is made and sent")
    zones: list[str] = Field(default_factory=list, description="rooms; empty: every room")
    formats: list[ReportFormat] = Field(default_factory=lambda: list[ReportFormat](["pdf"]), min_length=1)
    language: Lang | None = Field(None, description="default: the site's language")
    notifiers: list[str] = Field(
        default_factory=list, description="channels that get it: e-mail (Apprise mailto://) with the files "
                                          "attached, the others (DingTalk, WeCom ...) a download link")


class ReportsConfig(_Strict):
    """How compliance reports judge a period, and the reports made by themselves."""

    min_completeness: float = Field(
        95.0, ge=0, le=100,
        description="percent of expected readings (per sensor's interval) below which a report cannot call a "
                    "period compliant (its verdict: insufficient data)")
    schedules: list[ReportSchedule] = Field(default_factory=list)
    keep: Duration = Field(400 * 86400.0, gt=0, description="scheduled report files older than this are deleted")


class AppConfig(_Strict):
    site: SiteConfig
    storage: StorageConfig = Field(default_factory=StorageConfig)
    mqtt: MqttConfig | None = None
    sensors: list[SerializeAsAny[SensorBase]]
    zones: list[ZoneConfig]
    sinks: list[SerializeAsAny[SinkBase]] = Field(default_factory=list)
    notifiers: list[SerializeAsAny[NotifierBase]] = Field(default_factory=list)
    contacts: list[ContactConfig] = Field(default_factory=list)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    alarms: AlarmWorkflowConfig = Field(default_factory=AlarmWorkflowConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    reports: ReportsConfig = Field(default_factory=ReportsConfig)

    def zone(self, zone_id: str) -> ZoneConfig:
        return next(z for z in self.zones if z.id == zone_id)

    def commodity(self, zone_id: str) -> Commodity | None:
        key = self.zone(zone_id).commodity
        return load_catalog()[key] if key else None

    def sensors_of(self, zone_id: str) -> list[SensorBase]:
        return [s for s in self.sensors if s.zone == zone_id]


# ---------------------------------------------------------------- loading


__all__ = ["AppConfig", "MqttConfig", "TlsConfig"]
