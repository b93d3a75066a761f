#!/usr/bin/env sh
# Builds keepwire_VERSION_ARCH.deb with dpkg-deb, from the built tree (run
# `npm run build` first): the app under /usr/lib/keepwire with its production
# node_modules (npm ci --omit=dev from package-lock.json, no install scripts:
# koffi ships its prebuilt libraries), /usr/bin/keepwire, the systemd unit,
# /etc/keepwire/keepwire.conf (a conffile), the man page, and maintainer
# scripts that create the `keepwire` system user and enable the service the
# way dh_installsystemd does.
#
#   sh scripts/build-deb.sh [OUTDIR]     prints the path of the .deb
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
[ -f "$root/dist/src/cli/main.js" ] || { echo "build-deb: run npm run build first" >&2; exit 1; }
command -v dpkg-deb >/dev/null 2>&1 || { echo "build-deb: dpkg-deb is missing (Debian package: dpkg)" >&2; exit 1; }
version=$(node -p "require('$root/package.json').version")
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/keepwire"
app="$pkg/usr/lib/keepwire"
mkdir -p "$app" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/keepwire" "$pkg/etc/default" \
  "$pkg/usr/share/man/man1" "$pkg/usr/share/doc/keepwire" "$pkg/DEBIAN"

# The files of the npm package (package.json "files"), then its production dependencies.
(cd "$root" && npm pack --ignore-scripts --silent --pack-destination "$stage" >/dev/null)
tar -xzf "$stage/keepwire-$version.tgz" -C "$app" --strip-components=1
cp "$root/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
rm -f "$app/package-lock.json"
chmod 755 "$app/dist/src/cli/main.js"
ln -s ../lib/keepwire/dist/src/cli/main.js "$pkg/usr/bin/keepwire"

install -m 644 "$root/packaging/keepwire.service" "$pkg/lib/systemd/system/keepwire.service"
install -m 644 "$root/examples/keepwire.conf" "$pkg/etc/keepwire/keepwire.conf"
cat > "$pkg/etc/default/keepwire" <<'CONF'
# Environment of keepwire.service. Another configuration file:
#KEEPWIRE_CONF=/etc/keepwire/keepwire.conf
CONF
gzip -9n -c "$root/man/keepwire.1" > "$pkg/usr/share/man/man1/keepwire.1.gz"
install -m 644 "$root/LICENSE" "$pkg/usr/share/doc/keepwire/copyright"

size=$(du -sk "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: keepwire
Version: $version
Architecture: $arch
Maintainer: keepwire developers <keepwire@localhost>
Depends: nodejs (>= 20.19), adduser
Installed-Size: $size
Section: net
Priority: optional
Homepage: https://www.npmjs.com/package/keepwire
Description: nginx-style L4/L7 proxy with TCP keepalive control for load balancers
 keepwire keeps long-lived TCP and HTTP connections alive across load
 balancers with idle timeouts: per-socket keepalive control, an nginx-style
 proxy (keepwire serve, keepwire check), and tools that measure and audit a path.
CONTROL
printf '/etc/keepwire/keepwire.conf\n/etc/default/keepwire\n' > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd keepwire >/dev/null; then
    adduser --system --group --quiet --no-create-home --home /nonexistent \
      --gecos "keepwire load balancer" keepwire
  fi
fi
# As dh_installsystemd: enable, and start where systemd runs.
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
  deb-systemd-helper unmask keepwire.service >/dev/null || true
  if deb-systemd-helper --quiet was-enabled keepwire.service; then
    deb-systemd-helper enable keepwire.service >/dev/null || true
  else
    deb-systemd-helper update-state keepwire.service >/dev/null || true
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    deb-systemd-invoke restart keepwire.service >/dev/null || true
  fi
fi
exit 0
SCRIPT
cat > "$pkg/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  deb-systemd-invoke stop keepwire.service >/dev/null || true
fi
exit 0
SCRIPT
# As Debian policy: the system user stays on purge (files may still be owned by it).
cat > "$pkg/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && [ -x /usr/bin/deb-systemd-helper ]; then
  deb-systemd-helper mask keepwire.service >/dev/null || true
fi
if [ "$1" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
  deb-systemd-helper purge keepwire.service >/dev/null || true
  deb-systemd-helper unmask keepwire.service >/dev/null || true
fi
exit 0
SCRIPT
chmod 755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

deb="$out/keepwire_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
