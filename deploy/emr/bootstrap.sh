#!/usr/bin/env bash
# EMR bootstrap action: installs Kiln's exporters on every node of a cluster, by role.
#
#   aws emr create-cluster ... \
#     --bootstrap-actions Path=s3://my-bucket/kiln/bootstrap.sh,Args=[s3://my-bucket/kiln]
#
# The S3 prefix holds either the release (scripts/release: kiln-*-linux-x86_64.tar.gz,
# kiln-*-linux-aarch64.tar.gz, SHA256SUMS), from which each node unpacks the tarball of its
# own architecture (x86_64, or aarch64 on Graviton) after checking it against SHA256SUMS;
# or what `deploy/emr/bootstrap.sh --stage DIR` lays out from this checkout's build:
# bin/ (the exporters), systemd/, deploy/. The source may also be a local directory.
# Arguments after the source go to deploy/install.sh (e.g. --no-start).
#
# Every node gets the node exporter (with its yarn collector on: CPU, memory and I/O of each
# YARN container) and the ping exporter
# (pinging the primary node), nodes with an NVIDIA driver the GPU exporter, and the primary
# node the Graphite bridge (for Spark's GraphiteSink, see configurations.json) and the JMX
# proxy (HDFS and YARN daemons, see deploy/emr/jmx/, and the ResourceManager's view of
# running applications). YARN runs containers in cgroups, which the yarn collector reads,
# only with configurations-yarn-cgroups.json; see docs/yarn-efficiency.md.
#
# EMR runs bootstrap actions before Hadoop is installed, as the hadoop user with sudo;
# everything here is idempotent, so a re-run does no harm.
set -euo pipefail

if [[ ${1:-} == --stage ]]; then
  # Lays out an S3-ready directory from this checkout's release build.
  out=${2:?--stage needs a directory}
  repo=$(cd "$(dirname "$0")/../.." && pwd)
  mkdir -p "$out/bin"
  for name in node gpu ping graphite jmx; do
    cp "$repo/target/release/kiln-$name-exporter" "$out/bin/"
  done
  cp -r "$repo/systemd" "$out/"
  mkdir -p "$out/deploy"
  cp -r "$repo/deploy/install.sh" "$repo/deploy/emr" "$out/deploy/"
  echo "staged in $out; upload with: aws s3 sync $out s3://BUCKET/kiln"
  exit 0
fi

source_prefix=${1:?usage: bootstrap.sh s3://bucket/prefix [install.sh options]}
shift
sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case $source_prefix in
  s3://*) aws s3 sync --only-show-errors "$source_prefix" "$work" ;;
  *) cp -r "$source_prefix"/. "$work" ;;
esac

case $(uname -m) in
  x86_64) arch=x86_64 ;;
  aarch64|arm64) arch=aarch64 ;;
  *) echo "kiln: no release for $(uname -m)" >&2; exit 1 ;;
esac
tarball=$(find "$work" -maxdepth 1 -name "kiln-*-linux-$arch.tar.gz" | sort -V | tail -1)
if [[ -n $tarball ]]; then
  # A release: this node's architecture, checked, unpacked; its bin/, systemd/ and deploy/
  # are laid out as --stage lays them out.
  if [[ -f $work/SHA256SUMS ]]; then
    (cd "$work" && grep " ${tarball##*/}\$" SHA256SUMS | sha256sum --check --quiet -) ||
      { echo "kiln: ${tarball##*/} does not match SHA256SUMS" >&2; exit 1; }
  fi
  tar -xzf "$tarball" -C "$work"
  tree=${tarball%.tar.gz}
  echo "kiln: installing ${tarball##*/}"
else
  tree=$work
fi
[[ -d $tree/bin && -f $tree/deploy/install.sh ]] ||
  { echo "kiln: $source_prefix holds neither kiln-*-linux-$arch.tar.gz nor a staged bin/ and deploy/" >&2; exit 1; }
chmod +x "$tree"/bin/* "$tree/deploy/install.sh"

info=/mnt/var/lib/info/instance.json
primary=false
if [[ -f $info ]] && grep -q '"isMaster": *true' "$info"; then
  primary=true
fi

exporters=node,ping
if [[ -e /proc/driver/nvidia/version ]] || lspci 2>/dev/null | grep -qi nvidia; then
  exporters+=,gpu
fi
if $primary; then
  exporters+=,graphite,jmx
fi

$sudo "$tree/deploy/install.sh" --bin-dir "$tree/bin" --only "$exporters" "$@"

# The settings below follow install.sh's --destdir (files under that root, no systemctl)
# and --no-start (no restart).
root="" start=true
options=("$@")
for ((i = 0; i < ${#options[@]}; i++)); do
  case ${options[i]} in
    --destdir) root=${options[i + 1]:-}; start=false ;;
    --no-start) start=false ;;
  esac
done
restart() { if $start; then $sudo systemctl restart "$@"; fi; }

# Every node reports its YARN containers (the yarn collector, docs/node-exporter.md): the
# flag goes in front of whatever ARGS the node exporter's defaults file already has.
node_defaults=$root/etc/default/kiln-node-exporter
if ! grep -q -- '^ARGS=.*--collector.yarn' "$node_defaults" 2>/dev/null; then
  if grep -q '^ARGS=' "$node_defaults" 2>/dev/null; then
    $sudo sed -i -E 's/^ARGS="(.*)"$/ARGS="--collector.yarn \1"/; s/^ARGS="--collector.yarn "$/ARGS="--collector.yarn"/' "$node_defaults"
  else
    echo 'ARGS="--collector.yarn"' | $sudo tee -a "$node_defaults" >/dev/null
  fi
  restart kiln-node-exporter.service
fi

# Each node pings the primary node; the primary pings the gateway only.
if ! $primary; then
  primary_host=$(grep -o '"masterHost": *"[^"]*"' /mnt/var/lib/info/job-flow.json 2>/dev/null | cut -d'"' -f4 || true)
  if [[ -n $primary_host ]] && ! grep -q "$primary_host" "$root/etc/default/kiln-ping-exporter"; then
    echo "ARGS=\"$primary_host\"" | $sudo tee "$root/etc/default/kiln-ping-exporter" >/dev/null
    restart kiln-ping-exporter.service
  fi
fi
if $primary; then
  # The bridge reads Spark's names with the EMR mapping; the JMX proxy reads the daemons
  # and (its yarn: section) the ResourceManager's REST API on :8088.
  echo 'ARGS="--graphite.mapping-config=/etc/kiln/graphite-mapping.yml"' |
    $sudo tee "$root/etc/default/kiln-graphite-exporter" >/dev/null
  echo 'ARGS="--config.file=/etc/kiln/jmx/kiln-jmx.yml"' |
    $sudo tee "$root/etc/default/kiln-jmx-exporter" >/dev/null
  restart kiln-graphite-exporter.service kiln-jmx-exporter.service
fi
echo "kiln: installed $exporters"
