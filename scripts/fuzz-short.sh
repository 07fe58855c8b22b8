#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time (FUZZTIME, default
# 5s each): a smoke test that the parsers of outside bytes survive mutation.
# Longer campaigns: go test -run '^$' -fuzz '^FuzzX$' -fuzztime 10m ./pkg
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the -fuzztime boundary when a worker is slow to stop
# (golang/go#75804, fixed in Go 1.27). Such a failure writes no failing input
# under testdata/fuzz/TARGET; it is retried (twice at most). A failure that
# writes an input, or any other failure, fails the run at once.
set -euo pipefail
fuzztime="${FUZZTIME:-5s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0

inputs() { [ -d "$1/testdata/fuzz/$2" ] && find "$1/testdata/fuzz/$2" -type f | sort || true; }

while IFS= read -r file; do
  pkg="$(dirname "$file")"
  for target in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //'); do
    for attempt in 1 2 3; do
      echo "fuzz $pkg $target ($fuzztime)$([ "$attempt" -gt 1 ] && echo ", attempt $attempt")"
      before="$(inputs "$pkg" "$target")"
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
        break
      fi
      if [ "$attempt" -lt 3 ] && [ "$(inputs "$pkg" "$target")" = "$before" ] &&
        grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "  the Go fuzz coordinator's deadline race (golang/go#75804), no failing input: retrying"
        continue
      fi
      cat "$log"
      status=1
      break
    done
  done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' . | sort)
exit $status
