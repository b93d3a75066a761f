#!/usr/bin/env sh
# Makes a local stand-in for node:20-bookworm-slim where no container registry
# is reachable (keepwire's CI machines; verified recipe in DESIGN §5):
# debootstrap --variant=minbase bookworm from apt's own Debian mirror, tini
# from Debian, and THIS machine's Node.js and npm copied in at the official
# image's paths (/usr/local/bin/node, /usr/local/lib/node_modules/npm): not a
# Debian or nodejs.org build, the same binary the tests run with. The
# machine's CA bundle goes in too (NODE_EXTRA_CA_CERTS), so that npm inside a
# build trusts what npm on the machine trusts (an egress proxy's CA, here).
# Imported with
# `podman import` as localhost/keepwire-base:KEY and cached: the rootfs tarball
# under ${XDG_CACHE_HOME:-~/.cache}/keepwire/container/, keyed by Node's
# version, so the 30 s+ debootstrap runs once per machine.
#
#   sh scripts/container-base.sh          prints the image name
#   podman build --format docker --build-arg BASE="$(sh scripts/container-base.sh)" .
set -eu
node_bin=${KEEPWIRE_BASE_NODE:-/usr/bin/node}
npm_dir=${KEEPWIRE_BASE_NPM:-/usr/lib/node_modules/npm}
[ -x "$node_bin" ] && [ -f "$npm_dir/bin/npm-cli.js" ] \
  || { echo "container-base: needs node at $node_bin and npm at $npm_dir (KEEPWIRE_BASE_NODE, KEEPWIRE_BASE_NPM)" >&2; exit 1; }
for tool in debootstrap podman; do
  command -v "$tool" >/dev/null 2>&1 || { echo "container-base: $tool is missing (sh scripts/system-deps.sh)" >&2; exit 1; }
done
node_version=$("$node_bin" --version)
key="bookworm-node${node_version#v}-2"
image="localhost/keepwire-base:$key"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/keepwire/container"
tarball="$cache/$key.tar"
if podman image exists "$image"; then echo "$image"; exit 0; fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  # apt's configured Debian mirror (deb822 sources first, then sources.list).
  mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -n1)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$tarball.part"' EXIT
  debootstrap --variant=minbase --include=tini bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  install -m 755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] && mkdir -p "$rootfs/etc/ssl/certs" && cp "$ca" "$rootfs$ca"
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
  tar -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
podman import --change 'CMD ["node"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  "$tarball" "$image" >/dev/null
echo "$image"
