#!/usr/bin/env bash
# Makes rootful podman usable on Debian 12 for the image (docker/Dockerfile) and its test
# (integration/container_test.py), without a Docker engine or a container registry: only
# Debian's apt archive has to be reachable. Run as root; setup.sh calls it.
#
#   1. installs podman, runc, podman-compose, netavark/aardvark-dns (compose networks with
#      name resolution), debootstrap and friends from Debian's archive;
#   2. writes /etc/containers/containers.conf.d/50-runnel.conf for what this host needs:
#      runc as the runtime (Debian's crun 1.8 refuses hybrid cgroup v1/v2 hosts), cgroupfs
#      when systemd is not the init, and container ulimits no higher than this process's
#      hard limits (without CAP_SYS_RESOURCE podman's default nofile/nproc of 1048576
#      cannot be set);
#   3. when no `debian:bookworm-slim` image is present, makes one locally, as Debian's
#      slim image is made: debootstrap --variant=minbase from the mirror apt uses, minus
#      docs, man pages, locales and apt caches, imported as localhost/debian:bookworm-slim.
#      `FROM debian:bookworm-slim` then resolves locally and nothing is pulled.
#
# Idempotent and silent when everything is in place. Nothing here listens on the network.
# Env: RUNNEL_BASE_IMAGE (default debian:bookworm-slim): the tag to make if missing.
set -euo pipefail

readonly suite=bookworm
readonly base_image="${RUNNEL_BASE_IMAGE:-debian:${suite}-slim}"
readonly conf_dir=/etc/containers/containers.conf.d
readonly conf_file="$conf_dir/50-runnel.conf"

log() { printf '===> podman_setup: %s\n' "$*"; }

if ((EUID != 0)); then
  echo "podman_setup.sh: run as root (rootful podman)" >&2
  exit 1
fi

# ---- 1. packages ----
packages=(podman runc buildah podman-compose netavark aardvark-dns containernetworking-plugins
          iptables slirp4netns uidmap fuse-overlayfs debootstrap debian-archive-keyring)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    exit 1
  fi
  rm -f "$apt_log"
fi

# ---- 2. containers.conf drop-in ----
hard_nofile=$(ulimit -Hn)
hard_nproc=$(ulimit -Hu)
[[ "$hard_nofile" == unlimited ]] && hard_nofile=1048576
[[ "$hard_nproc" == unlimited ]] && hard_nproc=1048576
containers_section=""
if ((hard_nofile < 1048576 || hard_nproc < 1048576)); then
  # podman caps its own RLIMIT_NPROC at 32768 and the runtime inherits it: a container
  # nproc above that fails with "error setting rlimit type 6".
  nproc=$((hard_nproc < 32768 ? hard_nproc : 32768))
  containers_section="[containers]
default_ulimits = [\"nofile=${hard_nofile}:${hard_nofile}\", \"nproc=${nproc}:${nproc}\"]
"
fi
engine_section='[engine]
runtime = "runc"
'
if [[ ! -d /run/systemd/system ]]; then
  engine_section+='cgroup_manager = "cgroupfs"
'
fi
conf="# Written by runnel's docker/podman_setup.sh; rewritten when this host's needs change.
${containers_section}${engine_section}"
if [[ ! -f "$conf_file" || "$(cat "$conf_file")"$'\n' != "$conf" ]]; then
  mkdir -p "$conf_dir"
  printf '%s' "$conf" >"$conf_file"
  log "wrote $conf_file"
fi

# ---- 3. the base image ----
if podman image exists "$base_image"; then
  exit 0
fi

# The Debian mirror apt already uses (deb822 sources or one-line lists).
mirror=$(
  {
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
  } | grep -E '/debian/?$' | head -n 1 || true
)
[[ -n "$mirror" ]] || { echo "podman_setup.sh: no Debian mirror in apt's sources" >&2; exit 1; }
security_mirror="${mirror%/}-security"

rootfs=$(mktemp -d /var/tmp/runnel-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
log "debootstrap --variant=minbase $suite from $mirror, imported as $base_image (about a minute)"
if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
  tail -n 30 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  exit 1
fi
rm -f "$rootfs.log"

# The slim image's conventions: apt sources in deb822 form, dpkg leaves out docs, man pages
# and locales, apt keeps no package caches or translations.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::AutoRemove::SuggestsImportant "false";' \
  >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,linda,locale}/* "$rootfs"/usr/share/lintian/overrides/*
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old

tar --numeric-owner -C "$rootfs" -c . |
  podman import --quiet --change 'CMD ["bash"]' - "$base_image" >/dev/null
log "made $base_image ($(podman image inspect --format '{{.Size}}' "$base_image") bytes)"
