#!/usr/bin/env sh
# Installs the Debian packages keepwire's lab and tests use, when missing:
# iproute2 (ip netns, veth), nftables (the lab's load balancer), tcpdump
# (packet evidence in lab timelines), nginx (the seed's nginx, tested literally),
# openssl (throwaway certificates for the TLS keepalive tests),
# zsh (`keepwire completion zsh` is loaded by the real shell),
# prometheus (promtool checks the `metrics` exposition), chromium (the `status`
# page and a WebSocket client tested in a real headless browser),
# nghttp2-client (h2load: many concurrent HTTP/2 streams against `http2 on`),
# redis-server and postgresql (the client presets tested against real servers),
# haproxy (`recommend --for haproxy` snippets and `doctor --haproxy` fixtures checked by `haproxy -c`),
# default-jdk-headless (`--for java` compiled by javac), golang-go (`--for go` compiled),
# podman buildah runc debootstrap containernetworking-plugins uidmap iptables
# (the Containerfile built and run from a locally made base: DESIGN §5).
# Needs root and apt-get; otherwise it says what is missing and goes on
# (namespace tests then skip with the reason, except under CI=true).
set -u
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v tcpdump >/dev/null 2>&1 || missing="$missing tcpdump"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v zsh >/dev/null 2>&1 || missing="$missing zsh"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v h2load >/dev/null 2>&1 || missing="$missing nghttp2-client"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
command -v javac >/dev/null 2>&1 || missing="$missing default-jdk-headless"
command -v go >/dev/null 2>&1 || [ -x /usr/lib/go/bin/go ] || missing="$missing golang-go"
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v buildah >/dev/null 2>&1 || missing="$missing buildah"
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing="$missing runc"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
[ -d /usr/lib/cni ] || missing="$missing containernetworking-plugins"
command -v newuidmap >/dev/null 2>&1 || missing="$missing uidmap"
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing="$missing iptables"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "keepwire: missing system packages:$missing (install them as root with apt-get)" >&2
  exit 0
fi
echo "keepwire: installing$missing" >&2
apt-get update -qq >/dev/null 2>&1 || true
# Packages only: a service started by the nginx package would be of no use here.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
  || echo "keepwire: apt-get install$missing failed" >&2
exit 0
