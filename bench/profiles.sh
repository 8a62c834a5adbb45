#!/usr/bin/env bash
# `make bench-profiles`: what each release-profile setting buys, measured.
#
# Builds one function (default: blue-green-swapper, the largest) for Lambda (arm64 zip) once per
# variant of the release profile, each in its own target directory so no variant reuses another's
# artifacts, and writes a table of zip size and clean build time to bench/PROFILES.md.
# A variant is the shipped profile (Cargo.toml [profile.release]) with one setting changed through
# cargo's CARGO_PROFILE_RELEASE_* variables.
#
# Inputs: PROFILE_FUNCTION (the package), PROFILE_VARIANTS (names from the list below, space-separated;
# default all), PROFILE_OUT (default bench/PROFILES.md). Each variant is a clean build of every
# dependency: about ten minutes on two cores. Rows of variants not built in this run are kept from
# the existing file when it measured the same function; each row says when and at which commit.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
function="${PROFILE_FUNCTION:-blue-green-swapper}"
out="${PROFILE_OUT:-$root/bench/PROFILES.md}"

# name | the change, as CARGO_PROFILE_RELEASE_* assignments | what it is
variants=(
  "shipped||as shipped: opt-level z, fat LTO, 1 codegen unit, stripped, panic unwind"
  "opt-s|CARGO_PROFILE_RELEASE_OPT_LEVEL=s|opt-level s instead of z"
  "opt-3|CARGO_PROFILE_RELEASE_OPT_LEVEL=3|opt-level 3 (cargo's default) instead of z"
  "lto-thin|CARGO_PROFILE_RELEASE_LTO=thin|thin LTO instead of fat"
  "lto-off|CARGO_PROFILE_RELEASE_LTO=false|no cross-crate LTO"
  "cgu-16|CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16|16 codegen units instead of 1"
)
selected="${PROFILE_VARIANTS:-$(printf '%s\n' "${variants[@]}" | cut -d'|' -f1 | tr '\n' ' ')}"

mkdir -p "$root/target/profiles"
rows=()
for variant in "${variants[@]}"; do
  IFS='|' read -r name assignment description <<<"$variant"
  [[ " $selected " == *" $name "* ]] || continue
  target_dir="$root/target/profiles/$name"
  rm -rf "$target_dir"
  echo "bench-profiles: $name ($description)" >&2
  started=$(date +%s)
  # shellcheck disable=SC2086 # the assignment is one word or none
  env $assignment CARGO_TARGET_DIR="$target_dir" cargo lambda build --release --arm64 --locked \
    --output-format zip --lambda-dir "$target_dir/lambda" -p "$function" >"$target_dir.log" 2>&1 \
    || { tail -30 "$target_dir.log" >&2; exit 1; }
  seconds=$(($(date +%s) - started))
  zip="$target_dir/lambda/$function/bootstrap.zip"
  bytes=$(stat -c %s "$zip")
  rows+=("$name|$description|$bytes|$seconds|$(date -u '+%Y-%m-%d %H:%M') at $(git -C "$root" rev-parse --short HEAD)")
  rm -rf "$target_dir" # several GB each; the size is all that is kept
done

# Keep the other variants' rows of an earlier run for the same function.
trim() { local text="$1"; text="${text#"${text%%[![:space:]]*}"}"; printf '%s' "${text%"${text##*[![:space:]]}"}"; }
if [[ -f $out ]] && grep -q "^\`$function\` built" "$out"; then
  while IFS='|' read -r _ name description bytes _ seconds measured _; do
    name=$(trim "$name")
    [[ " $selected " == *" $name "* ]] && continue
    rows+=("$name|$(trim "$description")|$(trim "$bytes")|$(trim "$seconds")|$(trim "$measured")")
  done < <(grep -E '^\| [a-z0-9-]+ \|' "$out" | grep -v '^| variant |')
fi

shipped_bytes=""
for row in "${rows[@]}"; do
  IFS='|' read -r name _ bytes _ <<<"$row"
  [[ $name == shipped ]] && shipped_bytes=$bytes
done

{
  echo "# Release profile: what each setting buys"
  echo
  echo "Written by \`make bench-profiles\` on this machine ($(nproc) cores)."
  echo "\`$function\` built with \`cargo lambda build --release --arm64 --output-format zip\`, each"
  echo "variant a clean build in its own target directory. Budget: a zip under 3 MB. Build times are"
  echo "context only: they depend on what else the machine was doing."
  echo
  echo "| variant | change | zip bytes | vs shipped | clean build s | measured (UTC) |"
  echo "|---|---|---:|---:|---:|---|"
  for variant in "${variants[@]}"; do
    row=$(printf '%s\n' "${rows[@]}" | grep "^${variant%%|*}|") || continue
    IFS='|' read -r name description bytes seconds measured <<<"$row"
    if [[ -n $shipped_bytes ]]; then
      delta=$(awk -v a="$bytes" -v b="$shipped_bytes" 'BEGIN {printf "%+.1f%%", (a - b) * 100 / b}')
    else
      delta="-"
    fi
    echo "| $name | $description | $bytes | $delta | $seconds | $measured |"
  done
} >"$out"
echo "bench-profiles: wrote $out" >&2
