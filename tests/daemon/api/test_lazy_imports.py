"""What the API costs a box nobody signs in to (issue 13, RSS): argon2-cffi (and cffi) load at the first
password hash, not with the app."""

from __future__ import annotations

import subprocess
import sys


def test_the_api_imports_argon2_only_when_a_password_is_hashed() -> None:
    code = (
        "import sys; import daemon.api, daemon.app.runtime, uvicorn;"
        "print('argon2' in sys.modules, 'cffi' in sys.modules);"
        "from daemon.api.passwords import hash_password, verify; h = hash_password('a long password');"
        "print('argon2' in sys.modules, h.startswith('$argon2id$v=19$m=19456,t=2,p=1$'),"
        " verify(h, 'a long password'), verify(h, 'another one'), verify('damaged', 'a long password'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "True", "True", "False", "False"]


def test_fastapi_neither_loads_pydantic_v1_nor_builds_its_openapi_models_until_asked() -> None:
    """~1.2 MB each (docs/benchmarks.md, session 11): FastAPI's OpenAPI models build at the first /openapi.json,
    and its check for pydantic.v1 models gets an ImportError instead of importing 23 modules. The app and its
    schema still work, and a model of the daemon's own is built when it is defined, as before."""
    code = (
        "import sys, json; from tests.conftest import make_config; from daemon.app.runtime import Daemon;"
        "from daemon.api import create_app; import fastapi.openapi.models as m; from daemon.config.schema import SiteConfig;"
        "from fastapi.testclient import TestClient;"
        "from pathlib import Path; d = Daemon(make_config(Path(sys.argv[1]))); c = TestClient(create_app(d));"
        "print(m.OpenAPI.__pydantic_complete__, SiteConfig.__pydantic_complete__, c.get('/api/v1/zones').status_code);"
        "doc = c.get('/openapi.json');"
        "print(doc.status_code, doc.json()['openapi'][:2], m.OpenAPI.__pydantic_complete__,"
        " any(k == 'pydantic.v1' or k.startswith('pydantic.v1.') for k, v in sys.modules.items() if v is not None))"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "200", "200", "3.", "True", "False"]


def test_the_box_serves_its_api_without_uvicorn_or_click() -> None:
    """uvicorn's package imports click, multiprocessing and logging.config (2.9 MB of RSS, docs/benchmarks.md,
    session 14); the daemon's own server (daemon/api/server.py) runs on h11 alone."""
    code = (
        "import sys; import daemon.app.runtime, daemon.api, daemon.api.server, daemon.app.cli;"
        "print(*(m in sys.modules for m in ('uvicorn', 'click', 'multiprocessing', 'h11')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False", "True"]
