#!/usr/bin/env bash
# The Debian package as an operator meets it, on this machine (root): it
# builds, installs with dpkg -i, `systemd-analyze verify` accepts the
# installed unit, the installed binary checks the installed example config
# and this host, an edited /etc/mplb/mplb.toml survives a reinstall, and
# dpkg -r / --purge remove everything (also when a step fails). Each dpkg
# and mplb step is bounded in time. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test-package: needs root (dpkg -i)" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' mplb 2>/dev/null | grep -q installed; then
    echo "test-package: an mplb package is already installed here; this test would remove it" >&2
    exit 1
fi

fail() {
    echo "test-package: FAILED: $*" >&2
    exit 1
}
cleanup() {
    timeout 120 dpkg --purge mplb >/dev/null 2>&1 || true
}
trap cleanup EXIT

deb=$(scripts/build-deb.sh | tail -1)
[ -f "$deb" ] || fail "no package built"
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends):'

timeout 120 dpkg -i "$deb" >/dev/null || fail "dpkg -i"
for f in /usr/bin/mplb /lib/systemd/system/mplb.service /etc/mplb/mplb.toml \
    /usr/share/mplb/grafana/mplb-dashboard.json /usr/share/mplb/prometheus/mplb-alerts.yml \
    /usr/share/doc/mplb/README.md /usr/share/doc/mplb/examples/demo.toml \
    /usr/share/doc/mplb/examples/bird.conf /usr/lib/tmpfiles.d/mplb.conf /run/mplb/bird-vips.conf; do
    [ -f "$f" ] || fail "$f not installed"
done
# The example BIRD config parses, with the (empty) routes file it includes.
bird -p -c /usr/share/doc/mplb/examples/bird.conf || fail "bird -p: the example bird.conf"
echo "bird -p examples/bird.conf: ok"
dpkg-query -W -f='${Conffiles}\n' mplb | grep -q ' /etc/mplb/mplb.toml ' ||
    fail "/etc/mplb/mplb.toml is not a conffile"
if ldd /usr/bin/mplb | grep -E 'not found|librte_'; then
    fail "the installed binary lacks a library or links DPDK dynamically"
fi

verify=$(timeout 60 systemd-analyze verify /lib/systemd/system/mplb.service 2>&1) ||
    fail "systemd-analyze verify: $verify"
if echo "$verify" | grep -q 'mplb\.service'; then
    fail "systemd-analyze verify complains about the unit: $verify"
fi
echo "systemd-analyze verify mplb.service: ok"

timeout 60 /usr/bin/mplb --version
timeout 60 /usr/bin/mplb check-config /etc/mplb/mplb.toml | head -1 | grep -qx '/etc/mplb/mplb.toml: ok' ||
    fail "check-config of the installed example"
echo "mplb check-config /etc/mplb/mplb.toml: ok"
# check-host answers for this host either way (exit 1 where the example's
# NIC is absent, as on a machine without one); it must say which.
host=$(timeout 60 /usr/bin/mplb check-host /etc/mplb/mplb.toml) && rc=0 || rc=$?
last=$(echo "$host" | tail -1)
case "$rc:$last" in
0:"host ready for this config"* | 1:"host not ready: "*) echo "mplb check-host: $last" ;;
*) fail "check-host exit $rc: $host" ;;
esac

# An operator's edit of the config survives reinstalling (upgrading).
echo "# edited by test-package" >>/etc/mplb/mplb.toml
timeout 120 dpkg -i "$deb" >/dev/null || fail "dpkg -i (reinstall)"
grep -q '^# edited by test-package$' /etc/mplb/mplb.toml || fail "the edited config was overwritten"

timeout 120 dpkg -r mplb >/dev/null || fail "dpkg -r"
for f in /usr/bin/mplb /lib/systemd/system/mplb.service /usr/share/mplb /usr/share/doc/mplb; do
    [ ! -e "$f" ] || fail "$f left after dpkg -r"
done
[ -f /etc/mplb/mplb.toml ] || fail "dpkg -r removed the config (only --purge should)"
timeout 120 dpkg --purge mplb >/dev/null || fail "dpkg --purge"
[ ! -e /etc/mplb ] || fail "/etc/mplb left after dpkg --purge"
! dpkg-query -W mplb >/dev/null 2>&1 || fail "dpkg still knows mplb after --purge"
echo "package: installs, verifies, keeps the edited config, removes and purges cleanly"
