#!/usr/bin/env bash
# flowship release of the example project (staging) vs the same pipeline written as shell, measured in one
# run against the local services, median of N (default 3):
#   shell: `buildah bud` + `buildah push` (Containerfile FROM the same base, the dependencies installed once
#          beforehand and copied in, the code copied in), `git clone --depth 1` + `sed` + `git commit` +
#          `git push` of the staging overlay, `prefect --no-prompt deploy --all`
#   flowship: `flowship release --env staging` (build, push by digest, tag, bump, register)
# after a code-only change each time; then a rerun with nothing to do; then `flowship status` of three
# environments (staging released, dev and prod promoted from it) vs the shell way of looking (a shallow clone,
# grep of each pin, a HEAD of each pinned manifest, Prefect's deployments).
# Targets: code-only change <= 0.2x the shell way; rerun with nothing to do <= 0.5 s; status of three
# environments <= 0.5 s.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ROOT"
bash ci/install >/dev/null
command -v buildah >/dev/null || { apt-get install -y -qq buildah >/dev/null; }
cargo build --release --locked -q
FLOWSHIP=$CARGO_TARGET_DIR/release/flowship
started_here=false
if [ ! -f "$SERVICES/env" ]; then
  export FLOWSHIP_SERVICES_DIR; FLOWSHIP_SERVICES_DIR=$(mktemp -d); SERVICES=$FLOWSHIP_SERVICES_DIR
  bash ci/services start >/dev/null; started_here=true
fi
W=$(mktemp -d)
trap 'rm -rf "$W"; $started_here && bash "$ROOT/ci/services" stop' EXIT
. "$SERVICES/env"
REG=$FLOWSHIP_IT_REGISTRY_PLAIN
API=$FLOWSHIP_IT_PREFECT_PLAIN
PLAIN_PREFECT=${API#http://}; PLAIN_PREFECT=${PLAIN_PREFECT%%/*}
GITD=${FLOWSHIP_IT_GIT_DAEMON#git://}
N=${N:-3}
tok=$RANDOM$RANDOM
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

say "setting up: the example project twice (one per way), a GitOps repo each, a work pool"
seed() { # bare-repo-name
  local s; s=$(mktemp -d)
  cp -r fixtures/gitops/. "$s"
  grep -rl 'harbor.example.com/' "$s" | xargs sed -i -E "s#harbor.example.com/flows(-prod)?/example#$REG/bench-$1/example#g"
  git -C "$s" init -q -b main && git -C "$s" add -A
  git -C "$s" -c user.name=b -c user.email=b@example.invalid commit -q -m skeleton
  git init -q --bare -b main "$FLOWSHIP_IT_GIT_ROOT/$1.git"
  git -C "$s" push -q "$FLOWSHIP_IT_GIT_ROOT/$1.git" main
}
seed "rel-fs-$tok"; seed "rel-sh-$tok"
curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "{\"name\":\"bench-$tok\",\"type\":\"process\"}" "$API/work_pools/"
for way in fs sh; do
  cp -r fixtures/example-project "$W/$way"
  for f in etl report; do sed -i "s|@flow(name=\"$f\")|@flow(name=\"$f-$way-$tok\")|" "$W/$way/flows/$f.py"; done
done
cat > "$W/fs/flowship.yaml" <<YAML
image: {repository: $REG/bench-rel-fs-$tok/example, base: $FLOWSHIP_IT_PYTHON_BASE, python_version: "3.11"}
gitops: {repo: $FLOWSHIP_IT_GIT_DAEMON/rel-fs-$tok.git}
prefect: {api_url: $API}
tls: {plain_http: [$REG, $PLAIN_PREFECT, $GITD]}
environments:
  staging: {gitops: {paths: ["clusters/staging/**"]}, prefect: {work_pool: bench-$tok}}
  dev: {gitops: {paths: ["clusters/dev/**"]}, prefect: {work_pool: bench-$tok}}
  prod: {gitops: {paths: ["clusters/cluster-1/**", "clusters/cluster-2/**"]}, prefect: {work_pool: bench-$tok}}
YAML
# The shell way's prefect.yaml: no Docker build step (prefect deploy would need a Docker daemon for it), the
# image from the environment, the pool named.
python3 - "$W/sh/prefect.yaml" "bench-$tok" <<'PY'
import sys, re
p, pool = sys.argv[1], sys.argv[2]
t = open(p).read()
t = re.sub(r"\nbuild:\n(  .*\n)+", "\n", t)
t = t.replace('image: "{{ build-image.image }}"', 'image: "{{ $IMAGE }}"').replace("name: default", f"name: {pool}")
open(p, "w").write(t)
PY
# Dependencies for the shell way's image, installed once (as a cache would keep them).
python3 -m pip install -q --disable-pip-version-check --target "$W/sh-deps" -r fixtures/example-project/requirements.txt
printf 'FROM %s\nCOPY deps /opt/flowship/site-packages\nCOPY . /opt/prefect/example-project\n' "$FLOWSHIP_IT_PYTHON_BASE" > "$W/Containerfile"
bah() { buildah --root "$W/br" --runroot "$W/brr" --storage-driver vfs "$@"; }
bah pull -q --tls-verify=false "$FLOWSHIP_IT_PYTHON_BASE" >/dev/null 2>&1
fs_release() { (cd "$W/fs" && env -i PATH="$PATH" HOME="$W" CI_COMMIT_SHORT_SHA="$1" "$FLOWSHIP" -q release --env staging >/dev/null); }
shell_way() { # tag
  local ctx="$W/ctx"; rm -rf "$ctx"; cp -r "$W/sh" "$ctx"; cp -r "$W/sh-deps" "$ctx/deps"
  bah bud -q --isolation chroot --tls-verify=false --layers=false -f "$W/Containerfile" -t "localhost/bench:$1" "$ctx" >/dev/null 2>&1
  bah push -q --tls-verify=false --digestfile "$W/digest" "localhost/bench:$1" "docker://$REG/bench-rel-sh-$tok/example:$1" >/dev/null 2>&1
  local digest; digest=$(cat "$W/digest")
  local clone="$W/clone"; rm -rf "$clone"
  git clone -q --depth 1 "$FLOWSHIP_IT_GIT_DAEMON/rel-sh-$tok.git" "$clone"
  sed -i -e "s|newTag: \"[^\"]*\"|newTag: \"$1\"|" -e "s|digest: sha256:[0-9a-f]*|digest: $digest|" "$clone/clusters/staging/kustomization.yaml"
  git -C "$clone" -c user.name=b -c user.email=b@example.invalid commit -qam "bump $1"
  git -C "$clone" push -q origin main
  (cd "$W/sh" && IMAGE="$REG/bench-rel-sh-$tok/example:$1@$digest" PREFECT_API_URL=$API PREFECT_HOME=$W/ph \
    "$FLOWSHIP_IT_PREFECT_BIN" --no-prompt deploy --all >/dev/null 2>&1)
}
say "warm-up: one release each way (first pushes, first deployments)"
fs_release warm; shell_way warm

say "code-only change, then each way ($N times)"
sh_t=() fs_t=()
for i in $(seq 1 "$N"); do
  for way in fs sh; do echo "# change $i" >> "$W/$way/flows/etl.py"; done
  t0=$(now); shell_way "s$i"; t1=$(now); fs_release "f$i"; t2=$(now)
  sh_t+=("$(echo "$t1 - $t0" | bc)"); fs_t+=("$(echo "$t2 - $t1" | bc)")
done
a=$(median "${sh_t[@]}") b=$(median "${fs_t[@]}")
printf 'code-only change: shell way %.2f s (buildah + git + prefect deploy), flowship release %.2f s, ratio %.3f (target <= 0.20)\n' \
  "$a" "$b" "$(echo "$b / $a" | bc -l)"
git --git-dir "$FLOWSHIP_IT_GIT_ROOT/rel-fs-$tok.git" show main:clusters/staging/kustomization.yaml | grep -q "newTag: \"f$N\"" \
  || die "flowship's last release is not on the branch"

say "a rerun with nothing to do ($N times)"
re=()
for i in $(seq 1 "$N"); do t0=$(now); fs_release "f$N"; t1=$(now); re+=("$(echo "$t1 - $t0" | bc)"); done
printf 'rerun, nothing to do: flowship release %.3f s (target <= 0.5)\n' "$(median "${re[@]}")"

say "status of three environments (dev and prod promoted from staging; $N times each way)"
fs() { (cd "$W/fs" && env -i PATH="$PATH" HOME="$W" "$FLOWSHIP" -q "$@"); }
fs promote --from-env staging --env dev >/dev/null
fs promote --from-env staging --env prod >/dev/null
fs status >/dev/null || die "status of three environments is not in sync after the promotions"
look() { # the shell way: what is pinned where, does the registry have it, what Prefect runs
  local clone="$W/look"; rm -rf "$clone"
  git clone -q --depth 1 "$FLOWSHIP_IT_GIT_DAEMON/rel-fs-$tok.git" "$clone"
  for d in staging dev cluster-1 cluster-2; do
    local digest; digest=$(grep -o 'sha256:[0-9a-f]*' "$clone/clusters/$d/kustomization.yaml" | head -1)
    curl -sf -o /dev/null -I -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REG/v2/bench-rel-fs-$tok/example/manifests/$digest"
  done
  curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "$API/deployments/filter"
}
st=() lk=()
for i in $(seq 1 "$N"); do
  t0=$(now); look; t1=$(now); fs status >/dev/null; t2=$(now)
  lk+=("$(echo "$t1 - $t0" | bc)"); st+=("$(echo "$t2 - $t1" | bc)")
done
a=$(median "${lk[@]}") b=$(median "${st[@]}")
printf 'status of 3 environments: shell way %.3f s (clone + grep + curl, no comparison), flowship status %.3f s, ratio %.2f (target <= 0.5 s)\n' \
  "$a" "$b" "$(echo "$b / $a" | bc -l)"
