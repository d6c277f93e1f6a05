"""`type: aliyun_sms` and `type: tencent_sms`: mainland cloud SMS with approved sign names and templates.

One folder for both: they share credentials handling, template parameters and error mapping
(`channel.py`), and differ only in request signing (`signing.py`) and response shapes.
"""

from __future__ import annotations

from importlib import resources

from drivers.notifiers.cloud_sms.aliyun import AliyunSmsNotifier
from drivers.notifiers.cloud_sms.channel import CloudSmsError
from drivers.notifiers.cloud_sms.schema import AliyunSmsConfig, TencentSmsConfig
from drivers.notifiers.cloud_sms.tencent import TencentSmsNotifier

__all__ = ["ALIYUN_SAMPLE_YAML", "TENCENT_SAMPLE_YAML", "AliyunSmsConfig", "AliyunSmsNotifier", "CloudSmsError",
           "TencentSmsConfig", "TencentSmsNotifier"]

_files = resources.files(__name__)
ALIYUN_SAMPLE_YAML: str = _files.joinpath("sample_aliyun.yaml").read_text(encoding="utf-8")
"""A commented `notifiers:` list item for `aliyun_sms` with every option."""
TENCENT_SAMPLE_YAML: str = _files.joinpath("sample_tencent.yaml").read_text(encoding="utf-8")
"""A commented `notifiers:` list item for `tencent_sms` with every option."""
AliyunSmsNotifier.sample_yaml = ALIYUN_SAMPLE_YAML
TencentSmsNotifier.sample_yaml = TENCENT_SAMPLE_YAML
