"""The PDF a reviewer signs, printed by Chromium and read back with pdftotext, in zh-CN and en; then
`coldchain report --verify` on the printed file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.app.cli import main
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from tests.conftest import make_config
from tests.daemon.reports.signed_fixture import CONFIG, DAY0, fill

pytestmark = pytest.mark.peer
ART = Path(__file__).resolve().parents[2] / "artifacts" / "pages"
WANT = {
    "zh-CN": ["测试冷库 · 1号库", "测量仪器", "Testo 184", "SN-40917", "2025-03-01", "±0.5 °C", "CNAS-L1234-25",
              "记录间隔", "1 min", "5 min", "未登记", "报警限值及来源", "库房配置", "品种目录", "未核实", "UNVERIFIED",
              "告警处理记录", "门没关好，已关门", "已移库: 移到2号库，抽检3箱果温正常", "wang", "复核无误",
              "审核与批准", "审核", "批准", "签字", "报告数据 SHA-256"],
    "en": ["测试冷库 · Room 1", "Instruments", "Testo 184", "SN-40917", "Stated", "accuracy", "Logging", "not recorded",
           "Limits and their source", "room configuration", "commodity catalog", "UNVERIFIED in the catalog",
           "Alarm handling", "moved to another room", "Review and approval", "Reviewed", "Approved", "Signature",
           "SHA-256 of the report data"],
}


def pdf_pages(path: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return [p for p in text.split("\f") if p.strip()]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_signed_pdf_has_what_a_reviewer_checks(tmp_path: Path, lang: str, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = make_config(tmp_path, CONFIG)
    fill(cfg.storage.journal, cfg)
    conf = tmp_path / "config.yaml"
    conf.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / f"signed-{lang}.pdf"
    assert main(["report", "-c", str(conf), "-z", "z1", "--from", "2025-11-20", "--to", "2025-11-20",
                 "-f", "pdf", "-o", str(out), "--lang", lang]) == 0
    ART.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, ART / f"report-signed-{lang}.pdf")
    pages = pdf_pages(out)
    n = len(pages)
    assert n >= 2
    mark = "第{i}/{n}页" if lang == "zh-CN" else "Page{i}/{n}"
    where = squeeze(WANT[lang][0])
    for i, page in enumerate(pages, 1):  # pdftotext drops the spaces between CJK glyphs: compare without any
        assert mark.format(i=i, n=n) in squeeze(page), f"page {i}: no page number"
        assert where in squeeze(page), f"page {i}: no site and room"
    text = "\n".join(pages)
    missing = [w for w in WANT[lang] if squeeze(w) not in squeeze(text)]
    assert not missing, missing
    sha = re.search(r"SHA-256\D{0,40}?([0-9a-f]{64})", text)
    assert sha is not None
    capsys.readouterr()
    assert main(["report", "-c", str(conf), "--verify", str(out)]) == 0
    assert sha.group(1) in capsys.readouterr().out
    j = Journal(cfg.storage.journal)  # a reading of the period changed since the print: the copy no longer matches
    j.readings.append([Reading("t1", "z1", "s2", Quantity.TEMPERATURE, 30.0, DAY0 + 7 * 3600 + 1)])
    j.close()
    assert main(["report", "-c", str(conf), "--verify", str(out)]) == 1
