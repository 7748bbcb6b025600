# Shared helpers for the ci/ scripts. Sourced, never run.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches outside the clone, reused between runs and clones: the Prefect virtualenv, the cargo target dir.
CACHE=${FLOWSHIP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowship}
PREFECT_VERSION=3.9.1
PREFECT_DOCKER_VERSION=0.7.4
GITLAB_CI_LOCAL_VERSION=4.75.1
PREFECT_VENV=$CACHE/prefect-$PREFECT_VERSION
TOOLS_VENV=$CACHE/tools
# Per-clone service state: logs, pids, data, the env file the tests read.
SERVICES=${FLOWSHIP_SERVICES_DIR:-$ROOT/.services}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A TCP port nobody listens on now. Binding to 0 lets the kernel choose, so two clones never collide.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for NAME TIMEOUT_S CMD...: poll CMD until it succeeds; a readiness check, not a fixed sleep.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "error: $name not ready after ${timeout}s; its log:" >&2
      tail -n 30 "$SERVICES/logs/$name.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
}

# The Debian mirror this machine's apt uses (deb822 `URIs:` or a one-line `deb URI suite`): read at run time,
# never written into the repository.
debian_mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  [ -n "$m" ] && echo "$m"
}

# podman's configuration, as files of our own exported through CONTAINERS_*: the machine's /etc stays as it is.
podman_conf() {
  local d=$CACHE/podman
  mkdir -p "$d/storage" "$d/run" "$d/tmp" "$SERVICES/podman"
  cat > "$d/containers.conf" <<TOML
[containers]
netns = "host"
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$d/tmp"
TOML
  cat > "$d/storage.conf" <<TOML
[storage]
driver = "overlay"
graphroot = "$d/storage"
runroot = "$d/run"
TOML
  export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
}

# uv, the installer flowship prefers (in flowship's -python image, and in the build tests): its static binary
# from PyPI's manylinux wheel, fetched once through the machine's own pip configuration.
UV_VERSION=0.13.9
uv_bin() {
  local d=$CACHE/uv-$UV_VERSION
  if [ ! -x "$d/uv" ]; then
    rm -rf "$d"; mkdir -p "$d/wheel"
    python3 -m venv "$d/venv"
    "$d/venv/bin/pip" download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
      --python-version 3.11 -d "$d/wheel" "uv==$UV_VERSION" >&2
    "$d/venv/bin/python" - "$d" <<'PY'
import pathlib, sys, zipfile
d = pathlib.Path(sys.argv[1])
wheel = next((d / "wheel").glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    (d / "uv").write_bytes(z.read(name))
(d / "uv").chmod(0o755)
PY
    rm -rf "$d/venv" "$d/wheel"
  fi
  echo "$d/uv"
}
