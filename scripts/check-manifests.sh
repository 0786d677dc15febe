#!/usr/bin/env bash
# Manifests byte for byte, before and after a change to the compiler.
#
#   scripts/check-manifests.sh snapshot DIR   copy every manifest the last
#                                             test run wrote (build/) to DIR
#   scripts/check-manifests.sh compare DIR    diff the manifests of the last
#                                             test run against DIR
#
# Run the tests (ctest, which runs every lit test and example) before each
# step. Exit status 1 and a diff when any manifest differs or is missing.
set -euo pipefail
mode=${1:-}; dir=${2:-}
build=${BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
if [[ -z "$mode" || -z "$dir" ]]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2
fi
list() { (cd "$build" && find test -name '*.manifest.json' 2>/dev/null | sort); }
case "$mode" in
snapshot)
  mkdir -p "$dir"
  n=0
  while read -r f; do mkdir -p "$dir/$(dirname "$f")"; cp "$build/$f" "$dir/$f"; n=$((n+1)); done < <(list)
  echo "check-manifests: $n manifests saved in $dir" ;;
compare)
  [[ -d "$dir" ]] || { echo "check-manifests: error: no snapshot at $dir" >&2; exit 2; }
  bad=0; n=0
  while read -r f; do
    n=$((n+1))
    if [[ ! -f "$build/$f" ]]; then echo "missing now: $f"; bad=1
    elif ! cmp -s "$dir/$f" "$build/$f"; then echo "differs: $f"; diff -u "$dir/$f" "$build/$f" | head -40; bad=1; fi
  done < <(cd "$dir" && find . -name '*.manifest.json' | sed 's|^\./||' | sort)
  # Manifests the snapshot does not have (new tests) are listed, not judged.
  while read -r f; do [[ -f "$dir/$f" ]] || echo "new since the snapshot: $f"; done < <(list)
  if [[ $bad == 0 ]]; then echo "check-manifests: $n manifests byte-identical"; else exit 1; fi ;;
*) echo "check-manifests: error: unknown mode '$mode' (snapshot or compare)" >&2; exit 2 ;;
esac
