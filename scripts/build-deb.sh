#!/usr/bin/env bash
# Builds the Debian package of mplb from this workspace with dpkg-deb (no
# other packaging tool needed): the statically linked release binary, the
# systemd unit, /etc/mplb/mplb.toml (configs/bare-metal.toml; a conffile,
# so an edited one is kept on upgrade), the Grafana dashboard, the
# Prometheus alerting rules, the tmpfiles.d entry that creates the (empty)
# BGP routes file BIRD includes, and the documentation and example configs
# (BIRD's among them).
# Prints the path of the .deb on its last line.
#
#   scripts/build-deb.sh            # -> target/deb/mplb_<version>_<arch>.deb
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --features static-dpdk --target-dir target/static --bin mplb --quiet
bin=target/static/release/mplb
version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)

stage=target/deb/stage
rm -rf "$stage"
install -d "$stage/DEBIAN"
install -D -m 0755 "$bin" "$stage/usr/bin/mplb"
# Line tables stay in the build tree for profiling; the package ships none.
strip --strip-debug "$stage/usr/bin/mplb"
install -D -m 0644 deploy/systemd/mplb.service "$stage/lib/systemd/system/mplb.service"
install -D -m 0644 deploy/systemd/mplb-tmpfiles.conf "$stage/usr/lib/tmpfiles.d/mplb.conf"
install -D -m 0644 configs/bare-metal.toml "$stage/etc/mplb/mplb.toml"
install -D -m 0644 deploy/grafana/mplb-dashboard.json "$stage/usr/share/mplb/grafana/mplb-dashboard.json"
install -D -m 0644 deploy/prometheus/mplb-alerts.yml "$stage/usr/share/mplb/prometheus/mplb-alerts.yml"
doc="$stage/usr/share/doc/mplb"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 deploy/debian/copyright "$doc/copyright"
for c in configs/demo.toml configs/null-bench.toml configs/bare-metal.toml deploy/bird/bird.conf; do
    install -D -m 0644 "$c" "$doc/examples/$(basename "$c")"
done
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$stage/DEBIAN/"
echo /etc/mplb/mplb.toml >"$stage/DEBIAN/conffiles"

# Depends: the packages that hold the shared libraries the binary links
# directly (its NEEDED entries: libc, libnuma, libpcap, libbsd, ...), as
# dpkg-shlibdeps would find them, resolved by ldd on this build host.
needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}')
depends=$(for n in $needed; do
    # "libx.so => /path (addr)", or "/path/ld-linux.so (addr)" for the loader.
    path=$(ldd "$bin" | awk -v n="$n" '$1 == n && $3 ~ /^\// {print $3} $1 ~ ("/" n "$") {print $1}')
    [ -n "$path" ] || { echo "build-deb: ldd does not resolve $n" >&2; exit 1; }
    dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || {
        echo "build-deb: no package holds $path" >&2
        exit 1
    }
done | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$depends" ] || { echo "build-deb: no dependencies found" >&2; exit 1; }
# Not a library: `ip` gives a port's kernel interface (exception path) its
# addresses and MTU.
depends="$depends, iproute2"

installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: mplb
Version: $version
Architecture: $arch
Maintainer: mplb developers <mplb@localhost>
Installed-Size: $installed_kib
Depends: $depends
Recommends: dpdk
Suggests: prometheus, driverctl, bird2
Section: net
Priority: optional
Description: kernel-bypass L4 load balancer for Multipath TCP (DPDK)
 mplb forwards MPTCP connections statelessly by Maglev hashing, pins plain
 TCP flows in per-worker flow tables and routes MP_JOINs by token, with
 direct server return; one poll-mode worker per NIC queue, DPDK linked in.
 .
 The package holds the binary (mplb run, check-config, check-host, reload,
 stats, drain), the systemd unit, an example BIRD 2 config for announcing
 the VIPs by BGP, an example /etc/mplb/mplb.toml, a Grafana
 dashboard and Prometheus alerting rules in /usr/share/mplb. The dpdk package
 (recommended) has dpdk-devbind.py to bind the NIC to vfio-pci.
EOF
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"

deb="target/deb/mplb_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
