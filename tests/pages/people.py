"""People who sign in on the pages (issue 15): users in the journal with a password, and the login page they are
sent to on a 401, which brings them back to the page they were on."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from playwright.async_api import Page

from daemon.api.passwords import hash_password
from daemon.app.runtime import Daemon
from daemon.storage.users import By

# name -> (role, password); the names are those of the test configs' tokens, so the journal names the same person
PEOPLE = {"zhang": ("staff", "冷库 staff 2025"), "li": ("manager", "冷库 manager 2025")}


def _add(d: Daemon) -> None:
    for name, (role, password) in PEOPLE.items():
        d.journal.users.add(name, role, hash_password(password), d.clock.now(), By("test", "installer"))


async def add_people(d: Daemon) -> None:
    await asyncio.to_thread(_add, d)


async def sign_in_here(page: Page, name: str) -> None:
    """On the login page (a 401 sent us there): sign in and wait to be back on the page we came from."""
    await page.wait_for_url("**/login?**")
    await page.fill("#username", name)
    await page.fill("#password", PEOPLE[name][1])
    await page.click("#submit")
    await page.wait_for_url(lambda url: "/login" not in url)


async def sign_in(page: Page, base: str, name: str, back: str) -> None:
    """Sign in from the login page first, as someone who opened it by hand, and land on `back`."""
    await page.goto(f"{base}/login?next={quote(back, safe='')}")
    await sign_in_here(page, name)
