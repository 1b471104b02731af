"""The Shared Signals stream store, memory and SQLite under one suite: documents, the cursor's
compare-and-set, the pending queue and acknowledgements; and two transmitters filling one
stream at once on one SQLite file queue every event exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionward.core.events import SessionRevoked
from sessionward.jwt import KeySet
from sessionward.signals.transmitter import Transmitter
from sessionward.stores.eventlog.sqlite import SQLiteEventLog
from sessionward.stores.ssf import MemoryStreamStore, PendingSet, SQLiteStreamStore, StreamStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StreamStore]:
    made: StreamStore = (
        MemoryStreamStore() if request.param == "memory" else SQLiteStreamStore(tmp_path / "s.db")
    )
    yield made
    made.close()


def sets(*jtis: str) -> list[PendingSet]:
    return [PendingSet(j, f"token-{j}", 1.0) for j in jtis]


def test_documents_by_id_and_application(store: StreamStore) -> None:
    store.save("s1", "shop", {"stream_id": "s1", "n": 1})
    store.save("s2", "blog", {"stream_id": "s2"})
    store.save("s1", "shop", {"stream_id": "s1", "n": 2})  # replaces the document only
    assert store.get("s1") == {"stream_id": "s1", "n": 2}
    assert store.get("nope") is None
    assert [d["stream_id"] for d in store.by_application("shop")] == ["s1"]
    assert [d["stream_id"] for d in store.all()] == ["s1", "s2"]
    assert isinstance(store, StreamStore)


def test_the_cursor_moves_only_from_the_expected_value(store: StreamStore) -> None:
    store.save("s1", "shop", {})
    assert store.cursor("s1") is None
    assert store.enqueue("s1", None, "00000000000000000005", sets("a", "b"))
    assert store.cursor("s1") == "00000000000000000005"
    assert not store.enqueue("s1", None, "00000000000000000009", sets("c"))  # stale reader
    assert [p.jti for p in store.pending("s1", 10)] == ["a", "b"]
    assert not store.enqueue("missing", None, "1", sets("d"))


def test_queue_order_duplicates_ack_and_delete(store: StreamStore) -> None:
    store.save("s1", "shop", {})
    store.enqueue("s1", None, "1", sets("a", "b", "c"))
    store.enqueue("s1", "1", "2", sets("b", "d"))  # b is queued already: kept once, in place
    assert [p.jti for p in store.pending("s1", 10)] == ["a", "b", "c", "d"]
    assert [p.jti for p in store.pending("s1", 2)] == ["a", "b"]
    assert store.pending("s1", 0) == []
    assert store.count("s1") == 4
    assert store.ack("s1", ["a", "c", "a", "zz"]) == 2
    assert [p.token for p in store.pending("s1", 10)] == ["token-b", "token-d"]
    assert store.ack("other", ["b"]) == 0
    assert store.delete("s1")
    assert not store.delete("s1")
    assert store.pending("s1", 10) == []
    assert store.count("s1") == 0


def test_two_transmitters_fill_one_stream_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    log = SQLiteEventLog(str(path))
    keys = KeySet.generate("ES256", now=time.time())
    clock = [1000.0]

    def transmitter() -> Transmitter:
        return Transmitter(
            issuer="https://sessions.example", keys=keys, streams=SQLiteStreamStore(path),
            log=log, now=lambda: clock[0], poll_url="https://sessions.example/ssf/poll/",
        )  # fmt: skip

    first, second = transmitter(), transmitter()
    stream = first.create("shop", {})
    entries = [
        {**SessionRevoked(f"s{i:015d}", f"u{i}", 1001.0, reason="logout").to_dict(),
         "application": "shop"}
        for i in range(600)
    ]  # fmt: skip
    log.append(entries)
    results: list[int] = []
    threads = [threading.Thread(target=lambda t=t: results.append(t.fill(stream))) for t in
               (first, second)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 600
    queued = first.streams.pending(stream.stream_id, 1000)
    assert len(queued) == 600
    assert len({p.jti for p in queued}) == 600
    first.close()
    second.close()
    log.close()


def test_update_changes_the_document_in_one_step_and_pending_filters_by_prefix(
    store: StreamStore,
) -> None:
    assert store.update("missing", lambda d: {**d, "n": 1}) is None
    store.save("s1", "shop", {"n": 1})
    assert store.update("s1", lambda d: {**d, "n": d["n"] + 1}) == {"n": 2}
    assert store.update("s1", lambda d: None) == {"n": 2}  # None: left as it is
    assert store.get("s1") == {"n": 2}
    store.enqueue("s1", None, "1", sets("a1", "su-b", "c2", "su-d"))
    assert [p.jti for p in store.pending("s1", 10, "su-")] == ["su-b", "su-d"]
    assert [p.jti for p in store.pending("s1", 1, "su-")] == ["su-b"]
    assert [p.jti for p in store.pending("s1", 10)] == ["a1", "su-b", "c2", "su-d"]


def test_subject_changes_from_two_processes_on_one_file_are_all_kept(tmp_path: Path) -> None:
    """Two transmitters (as two service processes would) add subjects to one stream at once:
    each change is a read-modify-write in one transaction, so none is lost."""
    path = tmp_path / "s.db"
    log = SQLiteEventLog(str(path))
    keys = KeySet.generate("ES256", now=time.time())

    def transmitter() -> Transmitter:
        return Transmitter(
            issuer="https://sessions.example", keys=keys, streams=SQLiteStreamStore(path),
            log=log, now=time.time, poll_url="https://sessions.example/ssf/poll/",
            default_subjects="NONE",
        )  # fmt: skip

    first, second = transmitter(), transmitter()
    stream = first.create("shop", {})

    def add_many(tx: Transmitter, prefix: str) -> None:
        for i in range(40):
            subject = {
                "format": "iss_sub",
                "iss": "https://sessions.example",
                "sub": f"{prefix}{i}",
            }
            tx.add_subject("shop", stream.stream_id, subject)

    threads = [
        threading.Thread(target=add_many, args=(first, "a")),
        threading.Thread(target=add_many, args=(second, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    mode, listed = second.subjects_of("shop", stream.stream_id)
    assert mode == "NONE"
    assert sorted(s["sub"] for s in listed) == sorted(
        [f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)]
    )
    first.set_status("shop", stream.stream_id, "paused")  # a status change keeps the subjects
    assert len(first.subjects_of("shop", stream.stream_id)[1]) == 80
    first.close()
    second.close()
    log.close()
