"""One deadline for the whole fetch, against a real resolver that never answers (issue 16, points 8-9).

Each test runs one cold request in a network and mount namespace of its own
(tests/project/netns_request.py): ``/etc/resolv.conf`` points at a UDP socket on 127.0.0.1:53 that
receives and never answers, and ``/etc/hosts`` maps ``multi.test`` to three loopback addresses whose
listeners' accept queues are full (every SYN dropped). Nothing is mocked: glibc's resolver and the
kernel's TCP stack do the waiting.
Skipped only where the kernel refuses the namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simplejwt_patches.deadline import MARGIN
from tests.helpers import SCHEDULING
from tests.project.netns_request import UNREACHABLE
from tests.servers import ROOT, project_env

TIMEOUT = 1.0
#: glibc waits this long for the silent resolver (the cold request took all of it before the fix).
RESOLVER_WAIT = 4


@pytest.fixture(scope="module")
def namespace() -> list[str]:
    """The command prefix that runs a process in new network and mount namespaces."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("`unshare` (util-linux) is not installed: it is needed to make a resolver that does not answer")
    if shutil.which("ip") is None:
        pytest.fail("`ip` (iproute2) is not installed: it is needed to bring up lo in the test namespace")
    command = [unshare, "--net", "--mount"] if os.geteuid() == 0 else [unshare, "--map-root-user", "--net", "--mount"]
    probe = subprocess.run([*command, "true"], capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        pytest.skip(f"the kernel refuses network/mount namespaces here: {probe.stderr.strip()[:200]}")
    return command


def _request(namespace: list[str], tmp_path: Path, idp: Any, jwk_url: str) -> dict[str, Any]:
    (tmp_path / "resolv.conf").write_text(f"nameserver 127.0.0.1\noptions timeout:{RESOLVER_WAIT} attempts:1\n")
    (tmp_path / "hosts").write_text(
        "127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{host} multi.test\n" for host in UNREACHABLE)
    )
    env = project_env(
        tmp_path / "db.sqlite3",
        jwk_url,
        idp.issuer,
        SJP_PATCHES=json.dumps({"JWKS_TIMEOUT": TIMEOUT}),
        SJP_TOKEN=idp.mint(),
        SJP_SUBJECT=idp.subject,
    )
    done = subprocess.run(
        [*namespace, sys.executable, "-m", "tests.project.netns_request", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_resolver_that_does_not_answer_is_inside_the_deadline(namespace, tmp_path, idp):
    result = _request(namespace, tmp_path, idp, "https://idp.silent.test/realms/acme/protocol/openid-connect/certs")
    assert result["status"] == 401 and result["kind"] == "timeout", result
    assert result["elapsed"] <= TIMEOUT + MARGIN + SCHEDULING, (
        result
    )  # was RESOLVER_WAIT (4.0 s): DNS outside the deadline
    (signal,) = result["signals"]
    assert signal["kind"] == "timeout" and "resolving 'idp.silent.test'" in signal["reason"], signal
    assert signal["url"] == "https://idp.silent.test/realms/acme/protocol/openid-connect/certs"
    assert any("JWKS fetch from https://idp.silent.test/" in line for line in result["log"]), result["log"]


def test_every_unreachable_address_shares_one_deadline(namespace, tmp_path, idp):
    result = _request(namespace, tmp_path, idp, "https://multi.test/realms/acme/protocol/openid-connect/certs")
    assert result["status"] == 401 and result["kind"] == "timeout", result
    assert result["elapsed"] <= TIMEOUT + MARGIN + SCHEDULING, result  # was 3.0 s: each address got the full timeout
    assert result["elapsed"] >= TIMEOUT * 0.9, result  # the three addresses were tried, not skipped
    (signal,) = result["signals"]
    assert "while connecting to 'multi.test' (3 addresses)" in signal["reason"], signal
