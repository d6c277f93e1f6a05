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
