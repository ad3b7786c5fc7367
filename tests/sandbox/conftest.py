"""Every test of this directory ends with a look at the host: nothing of its runs may remain.

``runs`` (autouse) records the uid and the temp dir each jail of the test got, and afterwards
fails the test when any of these is left: a live process of one of those uids, a temp dir, an
entry in a watched top-level directory (``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run/lock``,
the repo ...) named with the test's token or owned by one of its uids, a SysV IPC object with
the token's key or one of its uids, a kernel key of one of its uids, or a host process whose
command line carries the token.  It cleans such leftovers up before failing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sandbox_kit import Runs

from ttcbench.sandbox import jail


@pytest.fixture
def token() -> str:
    """A fresh marker for what this test's attacks create or look for."""
    return secrets.token_hex(8)


@pytest.fixture(autouse=True)
def runs(monkeypatch: pytest.MonkeyPatch, token: str) -> Iterator[Runs]:
    record = Runs(token)
    allocate, setup = jail._allocate_uid, jail.Jail.setup

    def spy_uid() -> int:
        record.uids.append(allocate())
        return record.uids[-1]

    def spy_setup(self: jail.Jail, files: dict[str, str]) -> None:
        setup(self, files)
        record.workdirs.append(self.workdir)

    monkeypatch.setattr(jail, "_allocate_uid", spy_uid)
    monkeypatch.setattr(jail.Jail, "setup", spy_setup)
    yield record
    damage = record.damage() if record.checked else []
    record.clean()
    assert not damage, f"the run left traces on the host: {damage}"
