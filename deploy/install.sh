#!/usr/bin/env bash
# Installs Kiln's exporters on a host as systemd services: binaries, units, flag files
# (/etc/default/kiln-*), example configuration (/etc/kiln/) and the kiln system user the
# units run as. Running it again changes nothing that is already right, and never
# overwrites a flag or configuration file that exists (those are yours); binaries and
# units are replaced when they differ.
#
#   deploy/install.sh                          # every exporter, from target/release
#                                              # (from bin/ when run from a release tarball)
#   deploy/install.sh --release dist/          # from the release tarball of this host's
#                                              # architecture (uname -m), checked against SHA256SUMS
#   deploy/install.sh --only node,gpu          # some of them
#   deploy/install.sh --uninstall              # stop and remove binaries and units
#   deploy/install.sh --uninstall --purge      # ... and the flag and configuration files
#
# Options:
#   --only LIST      node, gpu, ping, graphite, jmx (comma-separated; default: all)
#   --bin-dir DIR    where the built binaries are (default: target/release, or bin/ of a
#                    release tarball)
#   --release FROM   install from a release tarball instead: FROM is the tarball, or a
#                    directory or http(s) URL that holds kiln-*-linux-<arch>.tar.gz (and
#                    SHA256SUMS, which is then checked); the tarball's own install.sh runs
#   --prefix DIR     installation prefix (default: /usr/local; the units run $PREFIX/bin/...)
#   --destdir DIR    stage everything under DIR instead of / (packaging, tests); no systemctl
#   --no-start       install and enable, but do not start
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
all=(node gpu ping graphite jmx)
only=() bin_dir="$repo/target/release" prefix=/usr/local destdir="" uninstall=0 purge=0 start=1
release="" passed=()
# An unpacked release tarball has the binaries in bin/ next to deploy/.
if [[ -x $repo/bin/kiln-node-exporter && ! -d $repo/target/release ]]; then
  bin_dir=$repo/bin
fi

die() { echo "install.sh: $*" >&2; exit 2; }
while (($#)); do
  case $1 in
    --release) release=${2:?--release needs a tarball, directory or URL}; shift 2; continue ;;
  esac
  # Everything but --release goes on to the tarball's install.sh.
  passed+=("$1")
  case $1 in
    --only) IFS=, read -r -a only <<<"${2:?--only needs a list}"; passed+=("$2"); shift 2 ;;
    --bin-dir) bin_dir=${2:?}; passed+=("$2"); shift 2 ;;
    --prefix) prefix=${2:?}; passed+=("$2"); shift 2 ;;
    --destdir) destdir=${2:?}; passed+=("$2"); shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
((${#only[@]})) || only=("${all[@]}")
for name in "${only[@]}"; do
  [[ " ${all[*]} " == *" $name "* ]] || die "unknown exporter '$name' (one of: ${all[*]})"
done

# The release of this host's architecture: fetched (when FROM is a URL), checked against
# SHA256SUMS (when there is one), unpacked; then that release's own install.sh installs it.
install_release() {
  local arch scratch tarball name
  arch=$(uname -m)
  case $arch in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) die "no Kiln release for architecture $arch (x86_64 and aarch64 are built)" ;;
  esac
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  case $release in
    http://*|https://*)
      local listing
      listing=$(curl -fsSL "${release%/}/SHA256SUMS") || die "cannot fetch ${release%/}/SHA256SUMS"
      name=$(grep -o "kiln-[^ ]*-linux-$arch\.tar\.gz\$" <<<"$listing" | tail -1 || true)
      [[ -n $name ]] || die "${release%/}/SHA256SUMS lists no tarball for $arch"
      curl -fsSL -o "$scratch/$name" "${release%/}/$name" || die "cannot fetch ${release%/}/$name"
      grep " $name\$" <<<"$listing" >"$scratch/SHA256SUMS"
      tarball=$scratch/$name ;;
    *.tar.gz)
      [[ -f $release ]] || die "$release does not exist"
      tarball=$release ;;
    *)
      [[ -d $release ]] || die "$release is neither a tarball nor a directory"
      tarball=$(find "$release" -maxdepth 1 -name "kiln-*-linux-$arch.tar.gz" | sort -V | tail -1)
      [[ -n $tarball ]] || die "$release holds no kiln-*-linux-$arch.tar.gz"
      if [[ -f $release/SHA256SUMS ]]; then cp "$release/SHA256SUMS" "$scratch/"; fi ;;
  esac
  name=$(basename "$tarball")
  if [[ -f $scratch/SHA256SUMS ]]; then
    (cd "$(dirname "$tarball")" && grep " $name\$" "$scratch/SHA256SUMS" | sha256sum --check --quiet -) ||
      die "$name does not match SHA256SUMS"
  fi
  tar -xzf "$tarball" -C "$scratch"
  local tree=$scratch/${name%.tar.gz}
  [[ -x $tree/deploy/install.sh ]] || die "$name holds no deploy/install.sh"
  echo "installing from $name"
  # (The + form: bash 4.2, on Amazon Linux 2, calls an empty array unbound.)
  "$tree/deploy/install.sh" --bin-dir "$tree/bin" ${passed[@]+"${passed[@]}"}
}
if [[ -n $release ]]; then
  [[ " ${passed[*]} " != *" --bin-dir "* ]] || die "--release and --bin-dir exclude each other"
  install_release
  exit
fi

# Manage services only on a live system that runs systemd.
systemd=0
if [[ -z $destdir && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  systemd=1
fi
root=${destdir%/}
units=$root/etc/systemd/system

# Copies a file when the target differs; says what it did.
put() { # mode source target
  local mode=$1 source=$2 target=$3
  if [[ -f $target ]] && cmp -s "$source" "$target"; then
    return
  fi
  install -D -m "$mode" "$source" "$target"
  echo "installed $target"
}

# Copies a file only when the target does not exist.
put_once() { # mode source target
  if [[ -e $3 ]]; then
    return
  fi
  install -D -m "$1" "$2" "$3"
  echo "installed $3"
}

# The unit with ExecStart pointed at this prefix.
unit_text() { # name
  sed "s|/usr/local/bin/|$prefix/bin/|g" "$repo/systemd/kiln-$1-exporter.service"
}

remove() {
  for name in "${only[@]}"; do
    local service=kiln-$name-exporter
    if ((systemd)); then
      systemctl disable --now "$service.service" 2>/dev/null || true
    fi
    for path in "$units/$service.service" "$root$prefix/bin/$service"; do
      if [[ -e $path ]]; then rm -f "$path"; echo "removed $path"; fi
    done
    if ((purge)); then
      if [[ -e $root/etc/default/$service ]]; then
        rm -f "$root/etc/default/$service"; echo "removed $root/etc/default/$service"
      fi
    fi
  done
  if ((purge)) && [[ -d $root/etc/kiln ]]; then
    rm -rf "$root/etc/kiln"; echo "removed $root/etc/kiln"
  fi
  if ((systemd)); then systemctl daemon-reload; fi
}

install_all() {
  local scratch
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  for name in "${only[@]}"; do
    local service=kiln-$name-exporter
    [[ -x $bin_dir/$service ]] || die "$bin_dir/$service is missing: build it with cargo build --release -p kiln-$name (or pass --bin-dir)"
    put 0755 "$bin_dir/$service" "$root$prefix/bin/$service"
    unit_text "$name" >"$scratch/$service.service"
    put 0644 "$scratch/$service.service" "$units/$service.service"
    put_once 0644 "$repo/systemd/$service.default" "$root/etc/default/$service"
  done
  if [[ " ${only[*]} " == *" graphite "* ]]; then
    put_once 0644 "$repo/deploy/emr/spark-graphite-mapping.yml" "$root/etc/kiln/graphite-mapping.yml"
  fi
  if [[ " ${only[*]} " == *" jmx "* ]]; then
    for file in "$repo"/deploy/emr/jmx/{kiln-jmx,hadoop-*}.yml; do
      put_once 0644 "$file" "$root/etc/kiln/jmx/$(basename "$file")"
    done
  fi
  # The units run as kiln: a static user where one exists, else systemd makes a dynamic one
  # of that name; systemd older than DynamicUser= (Amazon Linux 2) needs the static one.
  if [[ -z $destdir ]] && ! getent passwd kiln >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell "$(command -v nologin || echo /sbin/nologin)" --comment "Kiln exporters" kiln
    echo "created system user kiln"
  fi
  if ((systemd)); then
    systemctl daemon-reload
    for name in "${only[@]}"; do
      if ((start)); then
        systemctl enable --now "kiln-$name-exporter.service"
      else
        systemctl enable "kiln-$name-exporter.service"
      fi
    done
  fi
}

if ((uninstall)); then remove; else install_all; fi
