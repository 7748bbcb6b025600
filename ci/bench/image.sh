#!/usr/bin/env bash
# Images, measured in one run against the local plain registry:
#   flowship push vs `skopeo copy` of the same OCI layouts (one 64 MiB layer; 2,000 small files), first push
#   into a new repository and repeat push; a code-only rebuild + push (`flowship build`, dependencies cached)
#   vs `buildah bud` + `buildah push`; peak RSS of flowship pushing a 1 GiB layer; flowship's own slim image
#   (ci/image): its compressed size and `flowship --version` cold start in a podman container (with the floor:
#   the same container running the shell's `:`); `flowship release` of a code-only change (build, push, bump,
#   register) vs `podman build` (a Containerfile FROM the same Prefect base: pip install, COPY; podman's layer
#   cache keeps the pip layer) + `podman push`.
#   PART=uv: a uv.lock project's first build and code-only rebuild vs `podman build` of its uv sync Containerfile.
# Targets: first push <= 0.7x skopeo; repeat <= 1.0x skopeo; code-only rebuild <= 0.1x buildah; RSS <= 64 MiB;
# slim image <= 15 MB compressed; release of a code-only change <= 0.1x podman build + push.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ROOT"
bash ci/install >/dev/null
command -v buildah >/dev/null || { apt-get install -y -qq buildah >/dev/null; }
cargo build --release --locked -q
FLOWSHIP=$CARGO_TARGET_DIR/release/flowship
started_here=false
# Use running services, or start a private set (never in the developer's .services, which may be in use).
if [ ! -f "$SERVICES/env" ]; then
  export FLOWSHIP_SERVICES_DIR; FLOWSHIP_SERVICES_DIR=$(mktemp -d); SERVICES=$FLOWSHIP_SERVICES_DIR
  bash ci/services start >/dev/null; started_here=true
fi
W=$(mktemp -d)
trap 'rm -rf "$W"; $started_here && bash "$ROOT/ci/services" stop' EXIT
. "$SERVICES/env"
REG=$FLOWSHIP_IT_REGISTRY_PLAIN
N=${N:-5}
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fs() { env -i PATH="$PATH" HOME="$W" "$FLOWSHIP" -q --plain-http "$REG" "$@" >/dev/null; }

# PART=uv runs only the uv.lock project's figures (issue 17): a real project's first build and its code-only
# rebuild, flowship build vs `podman build` of the Containerfile such a project ships (uv sync --frozen).
if [ "${PART:-all}" = uv ]; then
  command -v podman >/dev/null && [ -n "${FLOWSHIP_IT_PODMAN_SOCK:-}" ] || die "PART=uv needs podman (start the services with it)"
  UV=$(uv_bin)
  proj=$W/uv-project; cp -r fixtures/real-projects/zzstoatzz__prefect-pack "$proj"
  # What such a project ships: dependencies first (cached in a layer), then the project, both from the lock.
  cat > "$proj/Containerfile" <<CF
FROM $FLOWSHIP_IT_PREFECT_BASE
ENV UV_SYSTEM_CERTS=1 UV_NATIVE_TLS=1 UV_LINK_MODE=copy SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0 UV_PYTHON=/usr/bin/python3
WORKDIR /opt/prefect/flow
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=bind,source=uv,target=/usr/local/bin/uv uv sync --frozen --no-dev --no-install-project
COPY . .
RUN --mount=type=bind,source=uv,target=/usr/local/bin/uv uv sync --frozen --no-dev --no-editable
CF
  cp "$UV" "$proj/uv"; printf 'uv\nContainerfile\n' > "$proj/.flowshipignore"
  pb() { # tag [podman storage options...]
    local t=$1; shift
    podman "$@" build -q --network host -v /etc/ssl/certs:/etc/ssl/certs:ro -t "localhost/bench-uv:$t" "$proj" >/dev/null 2>&1 \
      && podman "$@" push -q "localhost/bench-uv:$t" "docker://$REG/bench-uv-podman/p:$t" >/dev/null 2>&1; }
  fb() { # repository, uv cache and flowship's own cache (local wheels, installed project, the lock's export)
    env -i PATH="$(dirname "$UV"):$PATH" HOME="$W" UV_CACHE_DIR="$2" FLOWSHIP_CACHE_DIR="$2-flowship" SETUPTOOLS_SCM_PRETEND_VERSION=0.0.0 \
      "$FLOWSHIP" -q --plain-http "$REG" build --image "$REG/$1" --tag v1 --base "$FLOWSHIP_IT_PREFECT_BASE" --context "$proj" >/dev/null; }
  pf=() ff=() pc=() fc=()
  for i in $(seq 1 "${N_UV:-3}"); do
    # First build: podman with empty storage (a CI job), flowship into a new repository (no cached layer);
    # both start with an empty uv cache, flowship with an empty cache of its own.
    r=$W/podman-fresh-$i; t0=$(now); pb "f$i" --root "$r/root" --runroot "$r/run" || die "podman build failed"; t1=$(now)
    fb "bench-uv-$i-$RANDOM/p" "$W/uvc-$i"; t2=$(now)
    # Code-only rebuild: podman with its layer cache, flowship with its registry cache.
    echo "# change $i" >> "$proj/flows/hello.py"
    t3=$(now); pb "c$i" --root "$r/root" --runroot "$r/run" || die "podman rebuild failed"; t4=$(now)
    fb "bench-uv-warm/p" "$W/uvc-$i"; echo "# again $i" >> "$proj/flows/hello.py"; t5=$(now); fb "bench-uv-warm/p" "$W/uvc-$i"; t6=$(now)
    rm -rf "$r"
    pf+=("$(echo "$t1 - $t0" | bc)"); ff+=("$(echo "$t2 - $t1" | bc)"); pc+=("$(echo "$t4 - $t3" | bc)"); fc+=("$(echo "$t6 - $t5" | bc)")
  done
  a=$(median "${pf[@]}") b=$(median "${ff[@]}") c=$(median "${pc[@]}") d=$(median "${fc[@]}")
  # A CI job's podman has no layer cache: its code-only rebuild is its first build.
  printf 'uv.lock project (prefect-pack) first build: podman build + push %.2f s, flowship build %.2f s, ratio %.2f (target <= 1.0) | code-only rebuild: podman with a warm layer cache %.2f s, flowship %.2f s, ratio %.3f (target <= 0.1; %.3f against podman as a CI job, empty storage)\n' \
    "$a" "$b" "$(echo "$b / $a" | bc -l)" "$c" "$d" "$(echo "$d / $c" | bc -l)" "$(echo "$d / $a" | bc -l)"
  exit 0
fi

# PART=own runs only the own-image and release figures (the last part).
if [ "${PART:-all}" != own ]; then
say "making layouts (umoci)"
umoci init --layout "$W/l" >/dev/null
mkdir -p "$W/rand64" "$W/small"
head -c $((64 << 20)) /dev/urandom > "$W/rand64/blob"
python3 - "$W/small" <<'PY'
import os, sys
root = sys.argv[1]
for i in range(2000):
    d = os.path.join(root, f"d{i // 50:02d}", f"e{i % 7}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:04d}"), "wb") as f:
        f.write(os.urandom(15 * 1024))
PY
for n in rand64 small; do
  umoci new --image "$W/l:$n" >/dev/null
  umoci insert --image "$W/l:$n" "$W/$n" "/$n" >/dev/null
done

for n in rand64 small; do
  sf=() ff=() sr=() fr=()
  for i in $(seq 1 "$N"); do
    # skopeo remembers where blobs are (blob-info cache) and would mount instead of upload: a first push
    # starts without that memory, as flowship's does.
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb "$HOME/.local/share/containers/cache/blob-info-cache-v1.boltdb"
    t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$W/l:$n" "docker://$REG/bench/skopeo-$n-$i-$RANDOM:v1"; t1=$(now)
    repo="$REG/bench/fs-$n-$i-$RANDOM"
    fs push --from "oci-layout:$W/l:$n" --image "$repo" --tag v1; t2=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$W/l:$n" "docker://$REG/bench/skopeo-$n-rep:v1" 2>/dev/null || true
    t3=$(now); skopeo copy -q --dest-tls-verify=false "oci:$W/l:$n" "docker://$REG/bench/skopeo-$n-rep:v1"; t4=$(now)
    fs push --from "oci-layout:$W/l:$n" --image "$repo" --tag v1; t5=$(now)
    sf+=("$(echo "$t1 - $t0" | bc)"); ff+=("$(echo "$t2 - $t1" | bc)"); sr+=("$(echo "$t4 - $t3" | bc)"); fr+=("$(echo "$t5 - $t4" | bc)")
  done
  a=$(median "${sf[@]}") b=$(median "${ff[@]}") c=$(median "${sr[@]}") d=$(median "${fr[@]}")
  printf '%-7s first push: skopeo %.3f s, flowship %.3f s, ratio %.2f (target <= 0.70) | repeat: skopeo %.3f s, flowship %.3f s, ratio %.2f (target <= 1.00)\n' \
    "$n" "$a" "$b" "$(echo "$b / $a" | bc -l)" "$c" "$d" "$(echo "$d / $c" | bc -l)"
done

say "the protocol floor: curl POST + one streamed PUT of the 64 MiB layer (no config, no manifest)"
layer=$(python3 -c "
import json; m=json.load(open('$W/l/index.json'))['manifests']
d=[x['digest'][7:] for x in m if x.get('annotations',{}).get('org.opencontainers.image.ref.name')=='rand64'][0]
print(json.load(open('$W/l/blobs/sha256/'+d))['layers'][0]['digest'])")
cf=()
for i in $(seq 1 "$N"); do
  t0=$(now)
  loc=$(curl -s -D - -o /dev/null -X POST "http://$REG/v2/bench/curl-$i-$RANDOM/blobs/uploads/" | awk -F': ' 'tolower($1)=="location" {print $2}' | tr -d '\r')
  curl -s -o /dev/null -T "$W/l/blobs/sha256/${layer#sha256:}" -H 'Content-Type: application/octet-stream' "$loc&digest=$layer"
  t1=$(now); cf+=("$(echo "$t1 - $t0" | bc)")
done
printf 'rand64  protocol floor (curl, layer only): %.3f s\n' "$(median "${cf[@]}")"

say "code-only rebuild: flowship build vs buildah bud + push"
fs push --from "oci-layout:$W/l:small" --image "$REG/bench/base" --tag v1
proj=$W/proj; cp -r fixtures/example-project "$proj"
env -i PATH="$PATH" HOME="$W" "$FLOWSHIP" -q --plain-http "$REG" build --image "$REG/bench/flow" --tag warm --base "$REG/bench/base:v1" --python-version 3.11 --context "$proj" >/dev/null
printf 'FROM %s/bench/base:v1\nCOPY . /opt/prefect/flow\n' "$REG" > "$proj/Containerfile"
bb=() fb=()
for i in $(seq 1 "$N"); do
  echo "# change $i" >> "$proj/flows/etl.py"
  t0=$(now)
  buildah --root "$W/br" --runroot "$W/brr" --storage-driver vfs bud -q --isolation chroot --tls-verify=false --layers=false -f "$proj/Containerfile" -t "localhost/bench/flow:b$i" "$proj" >/dev/null 2>&1
  buildah --root "$W/br" --runroot "$W/brr" --storage-driver vfs push -q --tls-verify=false "localhost/bench/flow:b$i" "docker://$REG/bench/buildah-flow:b$i" >/dev/null 2>&1
  t1=$(now)
  env -i PATH="$PATH" HOME="$W" "$FLOWSHIP" -q --plain-http "$REG" build --image "$REG/bench/flow" --tag "f$i" --base "$REG/bench/base:v1" --python-version 3.11 --context "$proj" >/dev/null
  t2=$(now)
  bb+=("$(echo "$t1 - $t0" | bc)"); fb+=("$(echo "$t2 - $t1" | bc)")
done
a=$(median "${bb[@]}") b=$(median "${fb[@]}")
printf 'code-only rebuild + push: buildah %.3f s, flowship %.3f s, ratio %.3f (target <= 0.10)\n' "$a" "$b" "$(echo "$b / $a" | bc -l)"

say "peak RSS pushing a 1 GiB layer"
mkdir -p "$W/gib"; head -c $((1 << 30)) /dev/urandom > "$W/gib/blob"; rm -rf "$W/rand64" "$W/small"
umoci new --image "$W/l:gib" >/dev/null; umoci insert --image "$W/l:gib" "$W/gib" /gib >/dev/null; rm -rf "$W/gib"
/usr/bin/time -v -o "$W/time" env -i PATH="$PATH" HOME="$W" "$FLOWSHIP" -q --plain-http "$REG" push --from "oci-layout:$W/l:gib" --image "$REG/bench/gib-$RANDOM" --tag v1 >/dev/null
rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$W/time"); wall=$(awk -F': ' '/Elapsed/ {print $2}' "$W/time")
printf '1 GiB layer: peak RSS %.1f MiB (target <= 64), %s wall\n' "$(echo "$rss / 1024" | bc -l)" "$wall"

fi

if command -v podman >/dev/null && [ -n "${FLOWSHIP_IT_PODMAN_SOCK:-}" ]; then
  say "flowship's own slim image (ci/image): size and cold start"
  refs=$(FLOWSHIP_PLAIN_HTTP=$REG bash ci/image "$REG/bench/flowship" --python-base "$FLOWSHIP_IT_PYTHON_BASE" 2>/dev/null)
  slim=$(head -n1 <<<"$refs"); slim_digest=${slim##*@}; slim_repo=${slim%@*}; slim_repo=${slim_repo%:*}
  size=$(skopeo inspect --raw --tls-verify=false "docker://$slim_repo@$slim_digest" | jq '[.layers[].size] | add')
  printf 'slim image: %.2f MB compressed (target <= 15)\n' "$(echo "$size / 1000000" | bc -l)"
  podman pull -q "$slim_repo@$slim_digest" >/dev/null
  cs=() fl=()
  for i in $(seq 1 "$N"); do
    t0=$(now); podman run --rm "$slim_repo@$slim_digest" --version >/dev/null; t1=$(now)
    podman run --rm --entrypoint /bin/sh "$slim_repo@$slim_digest" -c : >/dev/null; t2=$(now)
    cs+=("$(echo "$t1 - $t0" | bc)"); fl+=("$(echo "$t2 - $t1" | bc)")
  done
  printf 'cold start in a container: podman run flowship --version %.3f s (floor, podman run sh -c : %.3f s)\n' \
    "$(median "${cs[@]}")" "$(median "${fl[@]}")"

  say "a code-only change: flowship release vs podman build + podman push"
  tok=$RANDOM$RANDOM
  API=$FLOWSHIP_IT_PREFECT_PLAIN; PLAIN_PREFECT=${API#http://}; PLAIN_PREFECT=${PLAIN_PREFECT%%/*}
  GITD=${FLOWSHIP_IT_GIT_DAEMON#git://}
  s_dir=$(mktemp -d -p "$W"); cp -r fixtures/gitops/. "$s_dir"
  grep -rl 'harbor.example.com/' "$s_dir" | xargs sed -i "s|harbor.example.com/flows/example|$REG/bench-img-$tok/example|g"
  git -C "$s_dir" init -q -b main && git -C "$s_dir" add -A
  git -C "$s_dir" -c user.name=b -c user.email=b@example.invalid commit -q -m skeleton
  git init -q --bare -b main "$FLOWSHIP_IT_GIT_ROOT/img-$tok.git" && git -C "$s_dir" push -q "$FLOWSHIP_IT_GIT_ROOT/img-$tok.git" main
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"bench-img-$tok\",\"type\":\"process\"}" "$API/work_pools/"
  rp=$W/release-project; cp -r fixtures/example-project "$rp"
  for f in etl report; do sed -i "s|@flow(name=\"$f\")|@flow(name=\"$f-img-$tok\")|" "$rp/flows/$f.py"; done
  cat > "$rp/flowship.yaml" <<YAML
image: {repository: $REG/bench-img-$tok/example, base: $FLOWSHIP_IT_PREFECT_BASE, python_version: "3.11"}
gitops: {repo: $FLOWSHIP_IT_GIT_DAEMON/img-$tok.git}
prefect: {api_url: $API}
tls: {plain_http: [$REG, $PLAIN_PREFECT, $GITD]}
environments:
  staging: {gitops: {paths: ["clusters/staging/**"]}, prefect: {work_pool: bench-img-$tok}}
YAML
  pp=$W/podman-project; cp -r fixtures/example-project "$pp"
  cat > "$pp/Containerfile" <<CF
FROM $FLOWSHIP_IT_PREFECT_BASE
COPY requirements.txt /tmp/requirements.txt
RUN PIP_CERT=/host-certs/ca-certificates.crt pip install -q --disable-pip-version-check -r /tmp/requirements.txt
COPY . /opt/prefect/example-project
WORKDIR /opt/prefect/example-project
CF
  # A CI job's podman starts with empty storage (each job is a fresh container): the base is pulled and pip
  # runs. The same with a warm local layer cache is printed too, for a builder that keeps one.
  pb() { # tag [podman storage options...]
    local t=$1; shift
    podman "$@" build -q --network host -v /etc/ssl/certs:/host-certs:ro -t "localhost/bench-img:$t" "$pp" >/dev/null 2>&1 \
      && podman "$@" push -q "localhost/bench-img:$t" "docker://$REG/bench-podman-$tok/example:$t" >/dev/null 2>&1; }
  pb_fresh() { local r=$W/podman-fresh; rm -rf "$r"; pb "$1" --root "$r/root" --runroot "$r/run"; local s=$?; rm -rf "$r"; return $s; }
  fr() { (cd "$rp" && env -i PATH="$PATH" HOME="$W" CI_COMMIT_SHORT_SHA="$1" "$FLOWSHIP" -q release --env staging >/dev/null); }
  pb warm || die "podman build of the bench project failed"
  fr warm
  pt=() wt=() ft=()
  for i in $(seq 1 "$N"); do
    echo "# change $i" >> "$pp/flows/etl.py"; echo "# change $i" >> "$rp/flows/etl.py"
    t0=$(now); pb_fresh "p$i" || die "podman build failed"; t1=$(now); pb "w$i"; t2=$(now); fr "f$i"; t3=$(now)
    pt+=("$(echo "$t1 - $t0" | bc)"); wt+=("$(echo "$t2 - $t1" | bc)"); ft+=("$(echo "$t3 - $t2" | bc)")
  done
  a=$(median "${pt[@]}") w=$(median "${wt[@]}") b=$(median "${ft[@]}")
  printf 'code-only change: podman build + push %.2f s (as a CI job: empty storage; with a warm layer cache %.2f s), flowship release (build, push, bump, register) %.2f s, ratio %.3f (target <= 0.10; %.2f against the warm cache)\n' \
    "$a" "$w" "$b" "$(echo "$b / $a" | bc -l)" "$(echo "$b / $w" | bc -l)"
else
  echo "podman is not running (start the services with podman installed): the own-image figures are skipped" >&2
fi
