#!/usr/bin/env sh
# Installs the Debian packages keepwire's lab and tests use, when missing:
# iproute2 (ip netns, veth), nftables (the lab's load balancer), tcpdump
# (packet evidence in lab timelines), nginx (the seed's nginx, tested literally),
# openssl (throwaway certificates for the TLS keepalive tests),
# zsh (`keepwire completion zsh` is loaded by the real shell).
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
# haproxy: `haproxy -c` validates doctor --haproxy's fixtures and fixes.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
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
