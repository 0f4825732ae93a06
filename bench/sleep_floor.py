"""The slow app's floor with no server: how close 256 Python threads that each sleep 10 ms in a
loop come to the 25,600-per-second ceiling on one core, and how busy they keep it.

Run pinned like the servers in the benchmark: `taskset -c 0 python3 bench/sleep_floor.py`.
"""

import sys
import threading
import time

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 256
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
SLEEP = 0.01


def main() -> None:
    counts = [0] * THREADS
    stop = time.monotonic() + SECONDS

    def sleeper(index: int) -> None:
        done = 0
        while time.monotonic() < stop:
            time.sleep(SLEEP)
            done += 1
        counts[index] = done

    threads = [threading.Thread(target=sleeper, args=(i,)) for i in range(THREADS)]
    started = time.monotonic()
    cpu_started = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu_started
    rate = sum(counts) / elapsed
    ceiling = THREADS / SLEEP
    print(
        f"{THREADS} threads: {rate:.0f} sleeps/s, {rate / ceiling:.3f} of the {ceiling:.0f} ceiling, "
        f"mean period {THREADS / rate * 1000:.2f} ms, CPU {100 * cpu / elapsed:.0f}% of one core"
    )


if __name__ == "__main__":
    main()
