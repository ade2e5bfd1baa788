#!/usr/bin/env bash
# Installs Kiln's exporters on a host as systemd services: binaries, units, flag files
# (/etc/default/kiln-*) and example configuration (/etc/kiln/). Running it again changes
# nothing that is already right, and never overwrites a flag or configuration file that
# exists (those are yours); binaries and units are replaced when they differ.
#
#   deploy/install.sh                          # every exporter, from target/release
#   deploy/install.sh --only node,gpu          # some of them
#   deploy/install.sh --uninstall              # stop and remove binaries and units
#   deploy/install.sh --uninstall --purge      # ... and the flag and configuration files
#
# Options:
#   --only LIST      node, gpu, ping, graphite, jmx (comma-separated; default: all)
#   --bin-dir DIR    where the built binaries are (default: target/release)
#   --prefix DIR     installation prefix (default: /usr/local; the units run $PREFIX/bin/...)
#   --destdir DIR    stage everything under DIR instead of / (packaging, tests); no systemctl
#   --no-start       install and enable, but do not start
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
all=(node gpu ping graphite jmx)
only=() bin_dir="$repo/target/release" prefix=/usr/local destdir="" uninstall=0 purge=0 start=1

die() { echo "install.sh: $*" >&2; exit 2; }
while (($#)); do
  case $1 in
    --only) IFS=, read -r -a only <<<"${2:?--only needs a list}"; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --prefix) prefix=${2:?}; shift 2 ;;
    --destdir) destdir=${2:?}; shift 2 ;;
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
