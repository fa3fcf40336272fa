"""Progress lines for long, parallel stage work: count, rate and ETA, and a heartbeat so a
step never goes quiet for long even while every item is still running."""

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

HEARTBEAT_S = 25.0
T = TypeVar("T")
R = TypeVar("R")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(label: str, done: int, total: int, elapsed: float) -> str:
    """'dialogues 2026-12-03|file_io: 4/10 (40%), 2.1/min, 0:00:12 elapsed, ETA 0:00:18'."""
    share = done / total if total else 1.0
    line = f"{label}: {done}/{total} ({share:.0%}), {_clock(elapsed)} elapsed"
    if done and elapsed > 0:
        rate = done / elapsed
        line += f", {rate * 60:.1f}/min"
        if done < total:
            line += f", ETA {_clock((total - done) / rate)}"
    return line


def completed_with_progress(
    futures: Iterable[Future],
    label: str,
    log: Callable[[str], None],
    *,
    every: int | None = None,
    heartbeat_s: float = HEARTBEAT_S,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Future]:
    """Yield futures as they finish, logging every `every` items (default: a tenth of them)
    and at least once per `heartbeat_s` while any is still running."""
    pending = set(futures)
    total = len(pending)
    every = every or max(1, total // 10)
    started = last = clock()
    done = 0
    while pending:
        timeout = max(0.05, heartbeat_s - (clock() - last))
        finished, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            done += 1
            yield future
            if done % every == 0 or done == total:
                log(progress_line(label, done, total, clock() - started))
                last = clock()
        if pending and clock() - last >= heartbeat_s:
            running = sum(f.running() for f in pending)  # the rest wait for a worker
            log(progress_line(label, done, total, clock() - started) + f", {running} running")
            last = clock()


def map_with_progress(
    work: Callable[[T, threading.Event], R],
    items: Sequence[T],
    concurrency: int,
    label: str,
    log: Callable[[str], None],
) -> list[R]:
    """`work(item, stop)` for every item on `concurrency` threads, logging progress; results
    in the items' order. The first failure (or an interrupt) is raised at once: it sets
    `stop`, so work in flight ends at its next step, and what has not started never does."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(work, item, stop) for item in items]
        try:
            for future in completed_with_progress(futures, label, log):
                future.result()
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [f.result() for f in futures]
