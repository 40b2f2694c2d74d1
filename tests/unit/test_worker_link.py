"""The runner's end of the stream worker: messages from many slots go out over one socket without a slot ever
waiting for another's send (benchwatch/backends/http.py, _WorkerLink._post)."""
from __future__ import annotations

import threading
import time
from multiprocessing import Pipe

from benchwatch.backends import http as transport


class SlowConnection:
    """A real Connection whose sends take a while (as a full socket buffer would make them), recording how many
    run at once and what each carried."""

    def __init__(self) -> None:
        self.ours, self.theirs = Pipe()
        self.busy = 0
        self.most_at_once = 0
        self.sizes: list[int] = []
        self._count = threading.Lock()

    def send(self, messages: list[tuple]) -> None:
        with self._count:
            self.busy += 1
            self.most_at_once = max(self.most_at_once, self.busy)
        time.sleep(0.0005)
        self.ours.send(messages)
        self.sizes.append(len(messages))
        with self._count:
            self.busy -= 1

    def received(self) -> list[tuple]:
        out: list[tuple] = []
        while self.theirs.poll(0.2):
            out.extend(self.theirs.recv())
        return out


def test_messages_from_many_slots_all_arrive_once_in_each_slots_order():
    link = transport._WorkerLink()
    conn = SlowConnection()
    go = threading.Barrier(16)

    def slot(n: int) -> None:
        go.wait()
        for i in range(100):
            link._post(conn, ("token", n, i))  # type: ignore[arg-type]

    threads = [threading.Thread(target=slot, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    got = conn.received()
    assert len(got) == 1600
    for n in range(16):
        assert [m[2] for m in got if m[1] == n] == list(range(100))  # each slot's order kept, nothing twice
    assert conn.most_at_once == 1  # one send at a time: frames never interleave on the socket
    assert max(conn.sizes) > 1  # messages left during a send went out together in the next one


def test_messages_go_to_the_connection_they_were_meant_for_and_a_closed_one_is_harmless():
    link = transport._WorkerLink()
    old, new = SlowConnection(), SlowConnection()
    old.ours.close()  # a worker that died: sending to it fails, quietly
    link._post(old, ("token", 1))  # type: ignore[arg-type]
    link._post(new, ("token", 2))  # type: ignore[arg-type]
    link._outbox.extend([(old, ("cancel", 3)), (new, ("cancel", 4))])  # left by slots during another's send
    link._post(new, ("token", 5))  # type: ignore[arg-type]
    assert new.received() == [("token", 2), ("cancel", 4), ("token", 5)]
    assert not link._outbox
