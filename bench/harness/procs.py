"""Child processes of a benchmark run: started in their own process group with
their output in a log file, stopped in order, never left behind.

Every process the harness starts is registered here; `stop_all` (called on
exit, on Ctrl-C and on SIGTERM) ends the ones still running by their process
group id, so a failed run cannot leave a DPDK process holding a core or
hugepages."""

import os
import signal
import subprocess
import time

_running = []

# Prepended to every command (bench/run --realtime: `chrt -r 1`).
_prefix = []


def set_realtime(on):
    """Run the generator and the DUT under SCHED_RR priority 1, so other
    processes cannot preempt their polling threads (the kernel's RT
    throttling still leaves 5% of each CPU to others). Round-robin, not
    FIFO: a DUT's management thread shares a CPU with a busy-polling
    generator on small hosts and must still get its turn. For dedicated
    hosts: on a shared one it starves everyone else for the run's length."""
    _prefix[:] = ["chrt", "-r", "1"] if on else []


def wrap(argv):
    return [*_prefix, *argv]


class Child:
    """One started process and the log its stdout and stderr go to."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        _running.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace=10.0):
        """SIGINT (DPDK programs stop cleanly on it), then SIGTERM, then
        SIGKILL, each after `grace` seconds; returns the exit status."""
        for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if not self.alive():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            if self.wait(wait_s) is not None:
                break
        self._close()
        return self.proc.returncode

    def _close(self):
        if not self._log.closed:
            self._log.close()
        if self in _running:
            _running.remove(self)

    def output(self):
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, lines=15):
        return "\n".join(self.output().splitlines()[-lines:])


def stop_all():
    """Stops every child still running, newest first (the device under test
    before the generator it is connected to)."""
    for child in list(reversed(_running)):
        child.stop(grace=3.0)


def wait_for(predicate, timeout, what, children=()):
    """Polls `predicate` every 50 ms until it holds; raises if `timeout`
    passes or one of `children` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        for c in children:
            if not c.alive():
                raise RuntimeError(
                    f"{c.name} exited (status {c.proc.returncode}) while waiting for {what}:\n{c.tail()}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
