#!/usr/bin/env bash
# Runs a command as the benchmark host would see the bundle: in a private
# mount namespace where this machine's valgrind (launcher, tools) and DPDK
# (shared libraries, drivers, testpmd) are hidden, with an empty environment
# but PATH, so whatever the command needs must come from the bundle.
# Root only (unshare -m); nothing outside the namespace changes.
#
#   bash bench/devbench/check-self-contained.sh CMD [ARGS...]
#   e.g. ... env OUT=/tmp/o DEVBENCH_SKIP=... bash bench/devbench/run.sh
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
exec unshare -m --propagation private -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root bash -c '
    set -e
    hide() { [ -e "$1" ] || return 0; if [ -d "$1" ]; then mount -t tmpfs -o size=1m none "$1"; else mount --bind /dev/null "$1"; fi; }
    hide /usr/libexec/valgrind
    for f in /usr/bin/valgrind /usr/bin/valgrind.bin /usr/bin/dpdk-testpmd /usr/lib/x86_64-linux-gnu/librte_*.so*; do hide "$f"; done
    hide /usr/lib/x86_64-linux-gnu/dpdk
    # The proof that the hiding took: the host copies are unusable here.
    ! /usr/bin/valgrind.bin --version >/dev/null 2>&1 || { echo "valgrind still usable" >&2; exit 1; }
    [ ! -s /usr/lib/x86_64-linux-gnu/librte_eal.so.23 ] || { echo "DPDK still visible" >&2; exit 1; }
    echo "check-self-contained: host valgrind and DPDK hidden; running: $*" >&2
    exec "$@"
' check-self-contained "$@"
