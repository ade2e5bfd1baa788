"""The release scripts/release builds: binaries that start on glibc 2.17, for x86_64 and
aarch64 (run under qemu user-mode emulation here); the tarball, the .deb and the .rpm of
each architecture, installed into scratch roots with dpkg and rpm and removed again; and
deploy/install.sh and the EMR bootstrap action installing from the tarball of this host's
architecture.

The release is the one in $KILN_RELEASE_DIR (scripts/test builds it there); without it,
scripts/release builds one into a scratch directory first."""

import functools
import http.server
import os
import pathlib
import platform
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARCHES = ["x86_64", "aarch64"]
EXPORTERS = ["node", "gpu", "ping", "graphite", "jmx"]
BINARIES = ["kiln"] + [f"kiln-{e}-exporter" for e in EXPORTERS]
# What the binaries may link: glibc's libraries, the dynamic loader and libgcc's unwinder.
ALLOWED_NEEDED = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                  "libutil.so.1", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
ELF_MACHINE = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# The aarch64 glibc that qemu-aarch64 loads the aarch64 binaries with (libc6-arm64-cross).
ARM64_SYSROOT = "/usr/aarch64-linux-gnu"
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
    platform.machine())


def run(*args, check=True, **kw):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def glibc_version(text):
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    given = os.environ.get("KILN_RELEASE_DIR")
    if given:
        return pathlib.Path(given)
    out = tmp_path_factory.mktemp("release")
    run(ROOT / "scripts" / "release", "--out", out, timeout=3600)
    return out


@pytest.fixture(scope="module")
def version():
    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'\[workspace\.package\][^\[]*?\nversion = "([^"]+)"', text).group(1)


@pytest.fixture(scope="module")
def unpacked(release, version, tmp_path_factory):
    """Each architecture's tarball, unpacked: {arch: its top directory}."""
    trees = {}
    for arch in ARCHES:
        into = tmp_path_factory.mktemp(f"tar-{arch}")
        with tarfile.open(release / f"kiln-{version}-linux-{arch}.tar.gz") as tar:
            tar.extractall(into, filter="tar")
        trees[arch] = into / f"kiln-{version}-linux-{arch}"
    return trees


def scrape_node_exporter(command, cwd=None, limit=60):
    """Starts kiln-node-exporter (command: how to run it, without flags) on a free loopback
    port and returns its first /metrics answer."""
    port = free_port()
    process = subprocess.Popen([str(c) for c in command] + [f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    try:
        deadline = time.monotonic() + limit
        while True:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
                    return answer.read().decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def assert_is_node_scrape(text):
    assert re.search(r"^node_cpu_seconds_total\{cpu=\"0\",mode=\"idle\"\} ", text, re.M), text[:2000]
    assert re.search(r"^node_memory_MemTotal_bytes \d", text, re.M)


# ---- The artifacts ------------------------------------------------------------------------

def test_sha256sums_cover_every_artifact(release, version):
    listed = sorted(line.split()[1] for line in (release / "SHA256SUMS").read_text().splitlines())
    expected = sorted([f"kiln-{version}-linux-{a}.tar.gz" for a in ARCHES]
                      + [f"kiln_{version}_{DEB_ARCH[a]}.deb" for a in ARCHES]
                      + [f"kiln-{version}-1.{a}.rpm" for a in ARCHES])
    assert listed == expected
    run("sha256sum", "--check", "--strict", "SHA256SUMS", cwd=release)


@pytest.mark.parametrize("arch", ARCHES)
def test_tarball_holds_binaries_units_deploy_docs_and_licence(unpacked, arch):
    tree = unpacked[arch]
    for binary in BINARIES:
        assert os.access(tree / "bin" / binary, os.X_OK), binary
    for e in EXPORTERS:
        assert (tree / "systemd" / f"kiln-{e}-exporter.service").is_file()
        assert (tree / "systemd" / f"kiln-{e}-exporter.default").is_file()
    for shipped in ["deploy/install.sh", "deploy/emr/bootstrap.sh", "deploy/prometheus/prometheus.yml",
                    "docs/node-exporter.md", "README.md", "LICENSE"]:
        assert (tree / shipped).is_file(), shipped
    assert "Apache License" in (tree / "LICENSE").read_text()


@pytest.mark.parametrize("arch", ARCHES)
def test_binaries_need_glibc_2_17_at_most(unpacked, arch):
    for binary in BINARIES:
        path = unpacked[arch] / "bin" / binary
        header = run("readelf", "--file-header", path).stdout
        assert ELF_MACHINE[arch] in header, f"{binary}: {header}"
        dynamic = run("readelf", "--dynamic", "--wide", path).stdout
        needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
        assert needed and needed <= ALLOWED_NEEDED, f"{binary} links {needed - ALLOWED_NEEDED}"
        symbols = run("readelf", "--dyn-syms", "--wide", path).stdout
        versions = {glibc_version(v) for v in re.findall(r"@GLIBC_([0-9.]+)", symbols)}
        assert versions, f"{binary}: no versioned glibc symbols at all"
        assert max(versions) <= (2, 17), f"{binary} needs GLIBC_{'.'.join(map(str, max(versions)))}"


@pytest.mark.parametrize("arch", ARCHES)
def test_gpu_exporter_loads_nvml_at_run_time(unpacked, arch):
    path = unpacked[arch] / "bin" / "kiln-gpu-exporter"
    dynamic = run("readelf", "--dynamic", "--wide", path).stdout
    assert "nvidia" not in dynamic
    assert b"libnvidia-ml.so.1" in path.read_bytes()


@pytest.mark.parametrize("arch", ARCHES)
def test_node_exporter_is_linked_with_its_hot_text_list(unpacked, arch):
    """crates/node/hot-text.ld reaches the release's linker for both architectures: the code
    a scrape runs sits in a section of its own ahead of the rest."""
    path = unpacked[arch] / "bin" / "kiln-node-exporter"
    sections = run("readelf", "--section-headers", "--wide", path).stdout
    hot = re.search(r"\s\.text\.hot\s+PROGBITS\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", sections)
    assert hot and int(hot.group(1), 16) > 0, sections


# ---- Running them ---------------------------------------------------------------------------

def native_or_emulated(arch):
    """How this host runs a binary of arch: directly, or through qemu-aarch64 with the aarch64
    glibc from libc6-arm64-cross."""
    if arch == HOST_ARCH:
        return []
    if arch != "aarch64" or not shutil.which("qemu-aarch64") or not pathlib.Path(ARM64_SYSROOT).is_dir():
        pytest.skip(f"no way to run {arch} binaries here (Debian's qemu-user and libc6-arm64-cross)")
    return ["qemu-aarch64", "-L", ARM64_SYSROOT]


@pytest.mark.parametrize("arch", ARCHES)
def test_every_binary_runs(unpacked, arch, version):
    prefix = native_or_emulated(arch)
    for binary in BINARIES:
        result = run(*prefix, unpacked[arch] / "bin" / binary, "--version", timeout=120)
        assert version in result.stdout + result.stderr, f"{binary}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("arch", ARCHES)
def test_node_exporter_serves_a_scrape(unpacked, arch):
    prefix = native_or_emulated(arch)
    assert_is_node_scrape(scrape_node_exporter(prefix + [unpacked[arch] / "bin" / "kiln-node-exporter"]))


# ---- The .deb ---------------------------------------------------------------------------

def files_under(root):
    return {str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*")}


@pytest.mark.parametrize("arch", ARCHES)
def test_deb_metadata_and_conffiles(release, version, arch):
    deb = release / f"kiln_{version}_{DEB_ARCH[arch]}.deb"
    fields = run("dpkg-deb", "--field", deb).stdout
    assert f"Architecture: {DEB_ARCH[arch]}\n" in fields
    assert re.search(r"^Depends: libc6 \(>= 2\.17\)", fields, re.M), fields
    listing = run("dpkg-deb", "--contents", deb).stdout
    for binary in BINARIES:
        assert re.search(rf"^-rwxr-xr-x root/root .* \./usr/bin/{binary}$", listing, re.M), binary
    with tempfile.TemporaryDirectory() as control:
        run("dpkg-deb", "--control", deb, control)
        conffiles = pathlib.Path(control, "conffiles").read_text().split()
        for e in EXPORTERS:
            assert f"/etc/default/kiln-{e}-exporter" in conffiles
        assert "/etc/kiln/graphite-mapping.yml" in conffiles
        for script in ["postinst", "prerm", "postrm"]:
            run("sh", "-n", pathlib.Path(control, script))


def dpkg_root(tmp):
    """An empty root that dpkg can install into, with this host's user database (the
    package adds its system user there) and, in dpkg's database, this host's packages the
    .deb depends on (its maintainer scripts run on this host, with its tools)."""
    root = pathlib.Path(tmp)
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"]:
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(run("dpkg-query", "--status", "libc6", "passwd").stdout)
    for f in ["passwd", "group", "shadow", "gshadow", "login.defs"]:
        if pathlib.Path("/etc", f).exists():
            shutil.copy2(pathlib.Path("/etc", f), root / "etc" / f)
    return root


def dpkg(root, *args):
    return run("dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root", *args)


def test_deb_installs_serves_upgrades_and_purges(release, version, tmp_path):
    if HOST_ARCH != "x86_64":
        pytest.skip("the install test runs the x86_64 package")
    root = dpkg_root(tmp_path / "root")
    before = files_under(root)
    deb = release / f"kiln_{version}_amd64.deb"
    dpkg(root, "--install", deb)

    # Binaries, units, flags files; the system user; dpkg's own check of every file.
    for binary in BINARIES:
        assert os.access(root / "usr/bin" / binary, os.X_OK)
    units = sorted((root / "usr/lib/systemd/system").glob("kiln-*-exporter.service"))
    assert len(units) == 5
    user = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("kiln:"))
    uid, shell = int(user.split(":")[2]), user.split(":")[6]
    assert uid < 1000 and shell.endswith("nologin"), user
    dpkg(root, "--verify", "kiln")

    # The units verify where the binaries are (ExecStart pointed into the root), and run as kiln.
    with tempfile.TemporaryDirectory() as checked:
        for unit in units:
            text = unit.read_text()
            assert "ExecStart=/usr/bin/" in text and "\nUser=kiln\n" in text, unit.name
            pathlib.Path(checked, unit.name).write_text(text.replace("/usr/bin/", f"{root}/usr/bin/"))
        if shutil.which("systemd-analyze"):
            result = run("systemd-analyze", "verify", *sorted(pathlib.Path(checked).iterdir()), check=False)
            assert result.returncode == 0 and not result.stderr.strip(), result.stderr

    assert_is_node_scrape(scrape_node_exporter([root / "usr/bin/kiln-node-exporter"]))

    # An upgrade keeps the administrator's flags (and adds no second user).
    edited = 'ARGS="--collector.processes"\n'
    (root / "etc/default/kiln-node-exporter").write_text(edited)
    with tempfile.TemporaryDirectory() as work:
        tree = pathlib.Path(work, "tree")
        run("dpkg-deb", "--raw-extract", deb, tree)
        control = tree / "DEBIAN/control"
        control.write_text(control.read_text().replace(f"Version: {version}\n", f"Version: {version}+1\n"))
        newer = pathlib.Path(work, "newer.deb")
        run("dpkg-deb", "--root-owner-group", "-Znone", "--build", tree, newer)
        dpkg(root, "--install", newer)
    assert (root / "etc/default/kiln-node-exporter").read_text() == edited
    assert (root / "etc/passwd").read_text().count("\nkiln:") == 1
    assert f"{version}+1" in run("dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "kiln").stdout

    # Purge: the package's files go, the administrator's own file stays, and so does the user
    # (its uid is not handed out again).
    (root / "etc/kiln/web.yml").write_text("basic_auth_users: {}\n")
    dpkg(root, "--purge", "kiln")
    left = files_under(root) - before
    left = {p for p in left if not p.startswith("var/lib/dpkg/") and not re.fullmatch(r"etc/((g?shadow|passwd|group)-?|\.pwd\.lock)", p)}
    assert left == {"etc/kiln", "etc/kiln/web.yml"}, sorted(left)


# ---- The .rpm ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHES)
def test_rpm_files_scripts_and_requirements(release, version, arch, tmp_path):
    rpm = release / f"kiln-{version}-1.{arch}.rpm"
    assert run("rpm", "-qp", "--qf", "%{ARCH}", rpm).stdout == arch
    files = set(run("rpm", "-qp", "--list", rpm).stdout.split())
    for binary in BINARIES:
        assert f"/usr/bin/{binary}" in files
    for e in EXPORTERS:
        assert f"/usr/lib/systemd/system/kiln-{e}-exporter.service" in files
    config = set(run("rpm", "-qp", "--configfiles", rpm).stdout.split())
    assert {f"/etc/default/kiln-{e}-exporter" for e in EXPORTERS} <= config
    # noreplace: an edited file survives upgrade and erase.
    flags = run("rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm).stdout
    assert re.search(r"^cn /etc/default/kiln-node-exporter$", flags, re.M), flags

    scripts = run("rpm", "-qp", "--scripts", rpm).stdout
    for part in ["useradd --system", "systemctl daemon-reload", "systemctl try-restart", "systemctl disable --now"]:
        assert part in scripts, part
    for tag in ["PREIN", "POSTIN", "PREUN", "POSTUN"]:
        body = run("rpm", "-qp", "--qf", f"%{{{tag}}}", rpm).stdout
        script = tmp_path / tag
        script.write_text(body)
        run("sh", "-n", script)

    requires = run("rpm", "-qp", "--requires", rpm).stdout
    versions = [glibc_version(v) for v in re.findall(r"\(GLIBC_([0-9.]+)\)", requires)]
    assert versions and max(versions) <= (2, 17), requires
    assert "nvidia" not in requires
    assert "shadow-utils" in requires and "systemd" in requires


def test_rpm_installs_serves_and_keeps_edited_flags_on_erase(release, version, tmp_path):
    if HOST_ARCH != "x86_64":
        pytest.skip("the install test runs the x86_64 package")
    root = tmp_path / "root"
    root.mkdir()
    rpm = ["rpm", f"--root={root}", "--dbpath=/var/lib/rpm"]
    run(*rpm, "--initdb")
    before = files_under(root)
    # Into a root without a distribution: no dependencies to satisfy and no shell to run the
    # scriptlets in (those are checked above).
    run(*rpm, "--install", "--nodeps", "--noscripts", release / f"kiln-{version}-1.x86_64.rpm")
    run(*rpm, "--verify", "--nodeps", "kiln")
    assert_is_node_scrape(scrape_node_exporter([root / "usr/bin/kiln-node-exporter"]))

    edited = 'ARGS="--collector.processes"\n'
    (root / "etc/default/kiln-node-exporter").write_text(edited)
    run(*rpm, "--erase", "--nodeps", "--noscripts", "kiln")
    # What is left: the edited file, and the directories a distribution's own packages own
    # (/usr/bin, /etc/default), now empty. Nothing of kiln's own, such as /etc/kiln.
    left = {p for p in files_under(root) - before if not p.startswith("var/lib/rpm")}
    assert {p for p in left if not (root / p).is_dir()} == {"etc/default/kiln-node-exporter.rpmsave"}, sorted(left)
    assert [p for p in left if "kiln" in p] == ["etc/default/kiln-node-exporter.rpmsave"], sorted(left)
    assert (root / "etc/default/kiln-node-exporter.rpmsave").read_text() == edited


# ---- Installing from the tarball -----------------------------------------------------------

def test_install_sh_installs_this_hosts_tarball_from_a_directory_or_url(release, unpacked, tmp_path):
    host = unpacked[HOST_ARCH]
    installed = tmp_path / "dir"
    result = run(ROOT / "deploy/install.sh", "--release", release, "--destdir", installed, "--only", "node,ping")
    assert f"linux-{HOST_ARCH}.tar.gz" in result.stdout
    for e in ["node", "ping"]:
        binary = installed / f"usr/local/bin/kiln-{e}-exporter"
        assert binary.read_bytes() == (host / "bin" / binary.name).read_bytes()
    assert not (installed / "usr/local/bin/kiln-gpu-exporter").exists()

    # Over HTTP, from a server on loopback that serves the release directory.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(release))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        fetched = tmp_path / "url"
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        run(ROOT / "deploy/install.sh", "--release", url, "--destdir", fetched, "--only", "node")
        assert (fetched / "usr/local/bin/kiln-node-exporter").read_bytes() == \
            (host / "bin/kiln-node-exporter").read_bytes()
    finally:
        server.shutdown()


def test_install_sh_refuses_a_tarball_that_does_not_match_sha256sums(release, version, tmp_path):
    copy = tmp_path / "release"
    copy.mkdir()
    name = f"kiln-{version}-linux-{HOST_ARCH}.tar.gz"
    shutil.copy2(release / "SHA256SUMS", copy)
    data = bytearray((release / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(data)
    result = run(ROOT / "deploy/install.sh", "--release", copy, "--destdir", tmp_path / "root", check=False)
    assert result.returncode != 0 and "does not match SHA256SUMS" in result.stderr, result.stderr
    assert not (tmp_path / "root").exists()


def test_emr_bootstrap_installs_this_hosts_tarball(release, unpacked, tmp_path):
    if pathlib.Path("/mnt/var/lib/info").exists():
        pytest.skip("this host is an EMR node: the bootstrap action would act on its role")
    installed = tmp_path / "root"
    result = run(ROOT / "deploy/emr/bootstrap.sh", release, "--destdir", installed, "--no-start")
    assert f"linux-{HOST_ARCH}.tar.gz" in result.stdout
    assert "installed node,ping" in result.stdout
    binary = installed / "usr/local/bin/kiln-node-exporter"
    assert binary.read_bytes() == (unpacked[HOST_ARCH] / "bin/kiln-node-exporter").read_bytes()
    assert (installed / "etc/systemd/system/kiln-ping-exporter.service").is_file()
