#!/usr/bin/env bash
# flowship bump vs the shell way (git clone --depth 1 + sed + git commit + git push), measured in one run on a
# generated GitOps repository of 5,000 HelmRelease manifests served by a local git daemon. Prints medians and
# the ratio; target: flowship <= 1.2x the shell way.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ROOT"
N=${N:-5}
APPS=${APPS:-5000}

cargo build --release --locked -q
FLOWSHIP=$CARGO_TARGET_DIR/release/flowship
work=$(mktemp -d)
trap 'kill "$(cat "$work/daemon.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

say "generating $APPS manifests"
mkdir -p "$work/seed" "$work/repos"
python3 - "$work/seed" "$APPS" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "apps", f"app{i:04d}")
    os.makedirs(d)
    with open(os.path.join(d, "release.yaml"), "w") as f:
        f.write(f"""apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app{i:04d}
  namespace: flows
spec:
  interval: 5m
  chart:
    spec:
      chart: prefect-worker
      version: "2025.6.*"
  values:
    # the flow image
    image:
      repository: harbor.example.com/flows/app{i:04d}
      tag: "1.0.0"
    resources:
      limits: {{cpu: 500m, memory: 512Mi}}
""")
PY
git init -q --bare -b main "$work/repos/bench.git"
git -C "$work/seed" init -q -b main
git -C "$work/seed" add -A
git -C "$work/seed" -c user.name=seed -c user.email=seed@example.invalid commit -q -m seed
git -C "$work/seed" push -q "$work/repos/bench.git" main
port=$(free_port)
git daemon --export-all --enable=receive-pack --base-path="$work/repos" --listen=127.0.0.1 --port="$port" \
  --reuseaddr --pid-file="$work/daemon.pid" --detach
URL=git://127.0.0.1:$port/bench.git
wait_for git-daemon 30 git ls-remote "$URL"

now() { date +%s.%N; }
shell_way() { # tag
  local d; d=$(mktemp -d)
  git clone -q --depth 1 --branch main "$URL" "$d/w"
  sed -i "s|^\(      tag: \).*|\1\"$1\"|" "$d/w/apps/app0042/release.yaml"
  git -C "$d/w" -c user.name=sh -c user.email=sh@example.invalid commit -q -am "bump app0042 to $1"
  git -C "$d/w" push -q origin main
  rm -rf "$d"
}
flowship_way() { # tag
  "$FLOWSHIP" -q --plain-http "127.0.0.1:$port" bump --repo "$URL" --image harbor.example.com/flows/app0042 --tag "$1"
}

shell=() fs=()
for i in $(seq 1 "$N"); do
  t0=$(now); shell_way "2.$i.0"; t1=$(now); flowship_way "3.$i.0"; t2=$(now)
  shell+=("$(echo "$t1 - $t0" | bc)"); fs+=("$(echo "$t2 - $t1" | bc)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms=$(median "${shell[@]}") mf=$(median "${fs[@]}")
printf 'bump on %d manifests, %d runs each (median seconds)\n' "$APPS" "$N"
printf '  shell way (clone --depth 1 + sed + commit + push): %.3f s\n' "$ms"
printf '  flowship bump:                                     %.3f s\n' "$mf"
printf '  ratio flowship/shell: %.2f (target <= 1.20)\n' "$(echo "$mf / $ms" | bc -l)"
git -C "$work/repos/bench.git" show main:apps/app0042/release.yaml | grep -q "tag: \"3.$N.0\"" || die "flowship's last bump is not on the branch"
