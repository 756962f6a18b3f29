"""The embedded stack against real servers: data and ports must survive restarts.

These run real PostgreSQL and nats-server processes, because what matters here
(initdb as a non-root user, JetStream file storage, port reuse) is exactly what
a fake would hide.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import asyncpg
import nats
import pytest

from infra.stack import EmbeddedNats, EmbeddedPostgres, find_nats_server, find_postgres_bin, free_port


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query)
        return rows
    finally:
        await conn.close()


async def _execute(dsn: str, script: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


def _sql(dsn: str, query: str) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(dsn, query))


def _pg_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.pgdata / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    """Running, not merely a zombie: in some containers PID 1 reaps orphans late or never."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state != "Z"


def test_binaries_are_found() -> None:
    assert (find_postgres_bin() / "postgres").is_file()
    assert os.access(find_nats_server(), os.X_OK)


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_keeps_data_and_port_across_restarts(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    try:
        dsn = pg.start()
        assert dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        assert pg.start() == dsn  # idempotent
        assert _sql(dsn, "select 1 as one")[0]["one"] == 1
        asyncio.run(_execute(dsn, "create table kept (v text); insert into kept values ('still here')"))
        first_port = pg.port
        pg.stop()

        again = EmbeddedPostgres(tmp_path / "pg")
        try:
            assert again.start() == dsn
            assert again.port == first_port
            assert [r["v"] for r in _sql(again.dsn(), "select v from kept")] == ["still here"]
            assert _sql(again.dsn("template1"), "select current_database() as db")[0]["db"] == "template1"
        finally:
            again.stop()
    finally:
        pg.stop()


def test_postgres_adopts_a_server_left_running(tmp_path: Path) -> None:
    """A hard-killed run leaves its postmaster behind; the next run must reuse it, not fail."""
    first = EmbeddedPostgres(tmp_path / "pg")
    second = EmbeddedPostgres(tmp_path / "pg")
    try:
        first.start()
        pid = _pg_pid(first)
        # `first` is simply abandoned, as if its process had died.
        with second:
            assert second.port == first.port
            assert _pg_pid(second) == pid
            assert _sql(second.dsn(), "select 1 as one")[0]["one"] == 1
        assert not _alive(pid)
    finally:
        second.stop()
        first.stop()


def test_postgres_ignores_a_stale_pid_file_naming_a_live_stranger(tmp_path: Path) -> None:
    """After a reboot the pid in postmaster.pid may belong to some other live process."""
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.start()
    pg.stop()
    owner = pg.pgdata.stat()
    as_owner = {"user": owner.st_uid, "group": owner.st_gid} if os.geteuid() == 0 else {}
    stranger = subprocess.Popen(["sleep", "30"], **as_owner)  # type: ignore[call-overload]
    try:
        lines = [str(stranger.pid), str(pg.pgdata), "0", str(pg.port), str(pg.pgdata), "127.0.0.1", "0 0", "ready"]
        (pg.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        os.chown(pg.pgdata / "postmaster.pid", owner.st_uid, owner.st_gid)
        with pg:
            assert _sql(pg.dsn(), "select 1 as one")[0]["one"] == 1
            assert _pg_pid(pg) != stranger.pid
        assert stranger.poll() is None  # never signalled
    finally:
        stranger.kill()
        stranger.wait()
        pg.stop()


def test_postgres_moves_socket_out_of_a_long_data_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedPostgres(deep) as pg:
        assert _sql(pg.dsn(), "select 1 as one")[0]["one"] == 1
        assert pg._temp_socket_dir is not None and pg._temp_socket_dir.is_dir()
        socket_dir = pg._temp_socket_dir
    assert not socket_dir.exists()


def test_postgres_stop_is_harmless_when_repeated_or_never_started(tmp_path: Path) -> None:
    EmbeddedPostgres(tmp_path / "never").stop()
    pg = EmbeddedPostgres(tmp_path / "pg")
    try:
        pg.start()
        pid = _pg_pid(pg)
    finally:
        pg.stop()
    pg.stop()
    assert not _alive(pid)
    with pytest.raises(RuntimeError):
        _ = EmbeddedPostgres(tmp_path / "unstarted").port


async def _publish_one(url: str) -> int:
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.one", b"payload")
        return ack.seq
    finally:
        await nc.close()


async def _stream_messages(url: str) -> int:
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info("T")
        return info.state.messages
    finally:
        await nc.close()


def test_nats_keeps_jetstream_and_port_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    try:
        url = server.start()
        assert url == f"nats://127.0.0.1:{server.port}" == server.url
        assert server.start() == url  # idempotent
        assert asyncio.run(_publish_one(url)) == 1
        server.stop()

        with EmbeddedNats(tmp_path / "nats") as again:
            assert again.url == url
            assert asyncio.run(_stream_messages(again.url)) == 1
    finally:
        server.stop()
    assert (tmp_path / "nats" / "nats.log").stat().st_size > 0


def test_nats_stop_twice_and_restart_after_kill(tmp_path: Path) -> None:
    EmbeddedNats(tmp_path / "never").stop()
    server = EmbeddedNats(tmp_path / "nats")
    try:
        server.start()
        assert asyncio.run(_publish_one(server.url)) == 1
        pid = int((tmp_path / "nats" / "nats.pid").read_text())
        server.kill()
        assert not _alive(pid)
        server.start()
        assert asyncio.run(_stream_messages(server.url)) == 1
        server.stop()
        server.stop()
    finally:
        server.stop()


def test_nats_adopts_a_server_left_running(tmp_path: Path) -> None:
    first = EmbeddedNats(tmp_path / "nats")
    second = EmbeddedNats(tmp_path / "nats")
    try:
        first.start()
        with second:
            assert second.port == first.port
            assert asyncio.run(_publish_one(second.url)) == 1
    finally:
        second.stop()
        first.stop()


def test_nats_start_failure_shows_the_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedNats(tmp_path / "nats", port=taken.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="nats-server") as failure:
                server.start()
        finally:
            server.stop()
    assert "nats.log" in str(failure.value)
