"""Runs one worker on many threads at once, as concurrent run() calls do."""

import threading


def run_concurrently(worker, n, timeout=60):
    """Calls worker(0) .. worker(n - 1) on n threads at once and waits for them; a thread still
    running after `timeout` seconds fails the test as a deadlock, and an exception raised in a
    worker fails it too (re-raised here, the first one)."""
    raised = []

    def guarded(k):
        try:
            worker(k)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            raised.append(e)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "runs deadlocked"
    if raised:
        raise raised[0]
