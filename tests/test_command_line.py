"""The `takedown` command end to end: real processes, a real server on a loopback port, curl-like calls."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from infra.stack import free_port
from tests.conftest import Services

TAKEDOWN = str(Path(sys.executable).parent / "takedown")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TAKEDOWN, *args], env=env, capture_output=True, text=True, timeout=60)


def wait_until_up(url: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited early: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {seconds} s")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    if process.stdout:
        process.stdout.close()


@pytest.fixture
def cli_env(database_url: str, services: Services, signing_key_pem: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
    env.update(
        TAKEDOWN_DATABASE_URL=database_url,
        TAKEDOWN_NATS_URL=services.nats_url,
        TAKEDOWN_SIGNING_KEY=signing_key_pem,
        TAKEDOWN_DATA_DIR=str(tmp_path),
    )
    return env


def test_org_create_token_serve_and_curl_me(cli_env: dict[str, str]) -> None:
    created = run(cli_env, "org", "create", "--name", f"CLI Police {os.getpid()}-{time.time_ns()}", "--kind", "police", "--country", "NL")
    assert created.returncode == 0, created.stderr
    org_id = created.stdout.strip()

    issued = run(cli_env, "token", "--org", org_id, "--roles", "MEMBER,ANALYST", "--subject", "officer-7", "--ttl", "600")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    port = free_port()
    server = subprocess.Popen(
        [TAKEDOWN, "serve", "--port", str(port)], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        query = {"query": "{ me { subject roles organization { id kind } } }"}
        me = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {
            "data": {"me": {"subject": "officer-7", "roles": ["MEMBER", "ANALYST"], "organization": {"id": org_id, "kind": "POLICE"}}}
        }
        broken = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
        assert broken.status_code == 401
        assert broken.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # Subscriptions are many and small: no per-connection compression state unless configured.
        with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            assert socket.response.headers.get("Sec-WebSocket-Extensions") is None
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0
    assert token not in output and token.split(".")[1] not in output


def test_serve_with_two_worker_processes_answers_and_stops_cleanly(cli_env: dict[str, str]) -> None:
    """--workers N: N API processes share the port; Ctrl-C stops all of them (none is left behind)."""
    org_id = run(cli_env, "org", "create", "--name", f"CLI Workers {os.getpid()}-{time.time_ns()}", "--kind", "hotline").stdout.strip()
    token = run(cli_env, "token", "--org", org_id, "--roles", "MEMBER", "--ttl", "600").stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [TAKEDOWN, "serve", "--port", str(port), "--workers", "2"], env=cli_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        workers: set[int] = set()
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:  # both come up; each answers for itself
            with httpx.Client() as fresh:  # a new connection each time, so the kernel may pick either process
                me = fresh.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ me { organization { id } } }"},
                                headers={"Authorization": f"Bearer {token}"})
            assert me.json() == {"data": {"me": {"organization": {"id": org_id}}}}
            workers = set(children_of(server.pid))
        assert len(workers) == 2, "two worker processes"
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0
    deadline = time.monotonic() + 10  # an exiting worker may still be in the kernel's hands for a moment
    while (alive := [p for p in workers if not _gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"worker processes outlived the server: {alive}"


def children_of(pid: int) -> list[int]:
    """The uvicorn worker processes of a server (multiprocessing's resource tracker left out)."""
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        children = [int(child) for child in listing.read().split()]
    workers = []
    for child in children:
        with contextlib.suppress(OSError), open(f"/proc/{child}/cmdline", "rb") as cmdline:
            if b"spawn_main" in cmdline.read():
                workers.append(child)
    return workers


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_command_line_errors_are_clear(cli_env: dict[str, str]) -> None:
    bad_kind = run(cli_env, "org", "create", "--name", "X", "--kind", "bakery")
    assert bad_kind.returncode == 2 and "--kind must be one of" in bad_kind.stderr
    bad_role = run(cli_env, "token", "--org", "00000000-0000-0000-0000-000000000000", "--roles", "GOD")
    assert bad_role.returncode == 2
    unknown = run(cli_env, "token", "--org", "00000000-0000-0000-0000-000000000000", "--roles", "MEMBER")
    assert unknown.returncode == 2 and "no organization" in unknown.stderr


def test_dev_starts_everything_from_nothing_and_stops_it(tmp_path: Path) -> None:
    """`takedown dev` with no URLs: embedded PostgreSQL and NATS, demo data, tokens; Ctrl-C stops all; data survives."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
    env["TAKEDOWN_DATA_DIR"] = str(tmp_path / "data")
    port = free_port()

    def start() -> tuple[subprocess.Popen[str], list[str]]:
        process = subprocess.Popen(
            [TAKEDOWN, "dev", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines: list[str] = []
        assert process.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise AssertionError("takedown dev exited: " + "".join(lines))
            lines.append(line)
            if line.startswith("Try: curl"):
                return process, lines
        raise AssertionError("takedown dev did not print its banner: " + "".join(lines))

    process, lines = start()
    try:
        assert any("GraphiQL:  http://127.0.0.1:" in line for line in lines)
        kinds = {line.split("(")[1].split(";")[0] for line in lines if line.startswith("  ") and "; roles " in line}
        assert kinds == {"GOVERNMENT", "REGULATOR", "POLICE", "PROSECUTOR", "HOTLINE", "COMPANY"}
        tokens = [line.strip() for line in lines if line.strip().startswith("eyJ")]
        wait_until_up(f"http://127.0.0.1:{port}/readyz", process)
        me = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ me { organization { name } } organizations { id } }"},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        ).json()
        assert me["data"]["me"]["organization"]["name"] == "Ministry of Justice and Security"
        first_ids = {o["id"] for o in me["data"]["organizations"]}
    finally:
        stop(process)
    assert process.returncode == 0
    assert not (tmp_path / "data" / "dev.env").exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps, "the embedded PostgreSQL or NATS outlived takedown dev"

    process, lines = start()  # a second run reuses the data: the same organizations
    try:
        tokens = [line.strip() for line in lines if line.strip().startswith("eyJ")]
        wait_until_up(f"http://127.0.0.1:{port}/readyz", process)
        again = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ organizations { id } }"},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        ).json()
        assert {o["id"] for o in again["data"]["organizations"]} == first_ids
    finally:
        stop(process)


def test_the_served_process_freezes_its_start_up_objects_and_collects_young_objects_less_often(
    cli_env: dict[str, str],
) -> None:
    """Run in a child process: freezing this test process would keep the test session's garbage for good."""
    code = ("import gc; from api.cli import YOUNG_GENERATION_THRESHOLD, serve_app; "
            "before = gc.get_threshold(); serve_app(); "
            "print(gc.get_freeze_count() > 10_000, gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD > before[0], "
            "gc.get_threshold()[1:] == before[1:])")
    done = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True"]
