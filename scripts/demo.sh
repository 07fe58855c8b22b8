#!/usr/bin/env bash
# demo.sh runs mmablate's example ablations end to end: it generates the
# shapes world if missing, runs the sweeps with the local executor (the
# first cell at each resolution pretrains that resolution's image encoder:
# base.yaml's encoder: section) and writes their reports. `make demo` and `make demo-full` call it after
# building bin/mmablate.
#
#   scripts/demo.sh quick   ablations/examples/quickstart.yaml (≈10 min on 2 cores)
#   scripts/demo.sh full    quickstart plus resolution, image_tokens, connector
#                           and mixture (≈30 min on 2 cores)
#
# Environment: MMABLATE (the binary, default bin/mmablate), RUNS (where sweep
# directories go, default runs), PARALLEL (cells at once, default 2: the
# examples are sized for two cores, one cell per core). A sweep directory
# that exists is continued, not redone: finished cells are skipped.
# The last lines printed are the (last) report's path and its summary.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${MMABLATE:-bin/mmablate}
runs=${RUNS:-runs}
parallel=${PARALLEL:-2}
examples=ablations/examples

case "${1:-quick}" in
  quick) sweeps=(quickstart) ;;
  full) sweeps=(quickstart resolution image_tokens connector mixture) ;;
  *) echo "usage: $0 [quick|full]" >&2; exit 2 ;;
esac

[[ -x $bin ]] || { echo "demo: $bin not built (run make build)" >&2; exit 1; }
[[ $parallel =~ ^[1-9][0-9]*$ ]] || { echo "demo: PARALLEL=$parallel is not a positive integer" >&2; exit 2; }

say() { printf '\n== demo: %s\n' "$*"; }
start=$SECONDS

# The shapes world the examples share, with the parameters of the shapes:
# block of base.yaml (read here so that there is one source of truth; a cell
# would also make it on first use, but not with this progress output).
synth_flags() {
  awk '
    /^shapes:/ { on = 1; next }
    on && /^[^ #]/ { on = 0 }
    on && /^  [a-z_]+:/ {
      key = $1; sub(/:$/, "", key); val = $2
      if (key == "dir") { print "--out"; print dir "/" val; next }
      if (key == "book") { if (val == "false") print "--no-book"; next }
      gsub(/_/, "-", key); print "--" key; print val
    }' dir="$examples" "$examples/base.yaml"
}
mapfile -t flags < <(synth_flags)
say "shapes world (${flags[*]})"
"$bin" data synth "${flags[@]}"

reports=()
for s in "${sweeps[@]}"; do
  say "sweep $s: $bin sweep run $examples/$s.yaml --out $runs/$s --parallel $parallel"
  # A failed cell makes sweep run exit 1 after the others finish; the report
  # lists it, so go on and write the report before failing. A run refused
  # before it wrote DIR (a bad sweep file, a non-empty DIR that is no sweep
  # directory) leaves no sweep.json and nothing to report; one refused on a
  # DIR made from another sweep file reports that older sweep as it stands.
  status=0
  "$bin" sweep run "$examples/$s.yaml" --out "$runs/$s" --parallel "$parallel" || status=$?
  if [[ -f $runs/$s/sweep.json ]]; then
    say "report $s: $bin report $runs/$s"
    "$bin" report "$runs/$s" > "$runs/$s.report.log"
    reports+=("$runs/$s")
  fi
  if (( status != 0 )); then
    echo "demo: mmablate sweep run $s exited with status $status (see its message above; a report of what finished is in $runs/$s/report/ if it started)" >&2
    exit "$status"
  fi
done

say "finished in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
# Each report's last lines are its report.html path and its summary; the
# quickstart's come last.
for (( i = ${#reports[@]} - 1; i >= 0; i-- )); do
  r=${reports[i]}
  [[ $i -eq 0 ]] || { echo; echo "-- $(basename "$r")"; cat "$r.report.log"; }
done
cat "${reports[0]}.report.log"
