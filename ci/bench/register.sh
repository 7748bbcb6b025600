#!/usr/bin/env bash
# flowship register vs `prefect --no-prompt deploy --all` vs a sequential keep-alive curl loop (the floor: the
# same POST /flows/ + POST /deployments/ per deployment, nothing else), for 1 and 50 deployments, in one run
# against the local Prefect 3.9 server on SQLite and on PostgreSQL, median of N (default 3).
# Targets: >= 10x faster than prefect deploy at 50; <= 1.0x the floor.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$ROOT"
bash ci/install >/dev/null
cargo build --release --locked -q
FLOWSHIP=$CARGO_TARGET_DIR/release/flowship
started_here=false
# Use running services, or start a private set (never in the developer's .services, which may be in use).
if [ ! -f "$SERVICES/env" ]; then
  export FLOWSHIP_SERVICES_DIR; FLOWSHIP_SERVICES_DIR=$(mktemp -d); SERVICES=$FLOWSHIP_SERVICES_DIR
  bash ci/services start >/dev/null; started_here=true
fi
trap '$started_here && bash "$ROOT/ci/services" stop' EXIT
. "$SERVICES/env"
API=$FLOWSHIP_IT_PREFECT_PLAIN
PLAIN=${API#http://}; PLAIN=${PLAIN%%/*}   # the local Prefect speaks plain HTTP: list it, as a user must
now() { date +%s.%N; }

project() { # dir count token: a flow file and a prefect.yaml with COUNT deployments
  local dir=$1 n=$2 tok=$3
  mkdir -p "$dir/flows"
  printf 'from prefect import flow\n\n\n@flow(name="bench-%s")\ndef bench(day: str, retries: int = 3, tables: list[str] | None = None):\n    """Bench flow.\n\n    Args:\n        day: the day\n    """\n' "$tok" > "$dir/flows/bench.py"
  { echo "deployments:"
    for i in $(seq 1 "$n"); do
      printf -- '- name: d%03d\n  entrypoint: flows/bench.py:bench\n  parameters: {day: "2024-01-01"}\n  schedules: [{cron: "%d 3 * * *", timezone: UTC}]\n  work_pool: {name: ci-pool, job_variables: {image: "h.example.com/f/bench:1"}}\n' "$i" "$((i % 60))"
    done; } > "$dir/prefect.yaml"
}

curl_floor() { # n tok: one keep-alive connection, 2 POSTs per deployment
  local n=$1 tok=$2 args=()
  for i in $(seq 1 "$n"); do
    args+=(-X POST -H 'Content-Type: application/json' -d "{\"name\":\"curl-$tok\"}" -o /dev/null "$API/flows/" --next)
  done
  curl -s "${args[@]}" -o /dev/null "$API/health"
  local flow_id; flow_id=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"name\":\"curl-$tok\"}" "$API/flows/" | jq -r .id)
  args=()
  for i in $(seq 1 "$n"); do
    args+=(-X POST -H 'Content-Type: application/json' -o /dev/null -d "{\"name\":\"d$i\",\"flow_id\":\"$flow_id\",\"work_pool_name\":\"ci-pool\",\"parameters\":{\"day\":\"2024-01-01\"},\"schedules\":[{\"schedule\":{\"cron\":\"$((i % 60)) 3 * * *\",\"timezone\":\"UTC\"}}],\"enforce_parameter_schema\":true,\"parameter_openapi_schema\":{\"type\":\"object\",\"properties\":{}}}" "$API/deployments/" --next)
  done
  curl -s "${args[@]}" -o /dev/null "$API/health"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
N=${N:-3}

printf 'register, %s, median of %d\n' "$(date -u +%FT%TZ)" "$N"
for backend in sqlite postgres; do
  case $backend in
    sqlite) API=$FLOWSHIP_IT_PREFECT_PLAIN ;;
    postgres) API=$FLOWSHIP_IT_PREFECT_PG ;;
  esac
  PLAIN=${API#http://}; PLAIN=${PLAIN%%/*}
  for n in 1 50; do
    ps=() cs=() fs=() rs=()
    for _ in $(seq 1 "$N"); do
      tok=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
      a=$(mktemp -d) b=$(mktemp -d)
      project "$a" "$n" "p$tok"; project "$b" "$n" "f$tok"
      t0=$(now)
      (cd "$a" && PREFECT_API_URL=$API PREFECT_HOME=$(mktemp -d) "$FLOWSHIP_IT_PREFECT_BIN" --no-prompt deploy --all >/dev/null 2>&1)
      t1=$(now)
      curl_floor "$n" "$tok"
      t2=$(now)
      (cd "$b" && env -i PATH="$PATH" PREFECT_API_URL=$API "$FLOWSHIP" -q --plain-http "$PLAIN" register --all >/dev/null)
      t3=$(now)
      (cd "$b" && env -i PATH="$PATH" PREFECT_API_URL=$API "$FLOWSHIP" -q --plain-http "$PLAIN" register --all >/dev/null)
      t4=$(now)
      ps+=("$(echo "$t1 - $t0" | bc)") cs+=("$(echo "$t2 - $t1" | bc)") fs+=("$(echo "$t3 - $t2" | bc)") rs+=("$(echo "$t4 - $t3" | bc)")
      rm -rf "$a" "$b"
    done
    p=$(median "${ps[@]}") c=$(median "${cs[@]}") f=$(median "${fs[@]}") r=$(median "${rs[@]}")
    printf '  %-8s %2d deployments: prefect deploy %6.2f s | curl floor %5.2f s | flowship %5.2f s (re-run, unchanged: %5.2f s) | prefect/flowship %5.1fx (target >= 10) | flowship/floor %4.2f (target <= 1.0)\n' \
      "$backend" "$n" "$p" "$c" "$f" "$r" "$(echo "$p / $f" | bc -l)" "$(echo "$f / $c" | bc -l)"
  done
done
