#!/usr/bin/env bash
# The composite action's first step (action.yml): puts the released writ
# binary for this runner in $RUNNER_TEMP/writ/bin, when there is one built
# from exactly the action's sources, and says `found=true|false` in
# $GITHUB_OUTPUT; the action builds from source on `false`.
#
# - The release is the one of the version in the action's Cargo.toml
#   (`vX.Y.Z`); it is used only if its SOURCES (the key of the sources it
#   was built from, scripts/source-key.sh) is the action's own key, so a
#   branch, a commit between releases or a moved tag never gets another
#   version's binary.
# - The archive must match its SHA-256 in the release's SHA256SUMS, and,
#   where the `gh` CLI is installed (as on GitHub's runners), the build
#   provenance the release workflow attested. A mismatch fails the step:
#   it is never papered over by building instead.
set -euo pipefail

say() { printf '%s\n' "$*" >&2; }
found() { echo "found=$1" >> "$GITHUB_OUTPUT"; }

if [ -z "${ACTION_REPOSITORY:-}" ]; then
  say "writ: the action runs from a local path: building from source"
  found false
  exit 0
fi
case "${RUNNER_OS:-}-${RUNNER_ARCH:-}" in
  Linux-X64) target=x86_64-unknown-linux-musl ;;
  Linux-ARM64) target=aarch64-unknown-linux-musl ;;
  macOS-X64) target=x86_64-apple-darwin ;;
  macOS-ARM64) target=aarch64-apple-darwin ;;
  *)
    say "writ: no released binary for ${RUNNER_OS:-?} ${RUNNER_ARCH:-?}: building from source"
    found false
    exit 0
    ;;
esac
version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$GITHUB_ACTION_PATH/Cargo.toml" | head -n 1)
if [ -z "$version" ]; then
  say "writ: no version in the action's Cargo.toml: building from source"
  found false
  exit 0
fi
tag="v$version"
base="${GITHUB_SERVER_URL:-https://github.com}/$ACTION_REPOSITORY/releases/download/$tag"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl_options=(--silent --show-error --location --retry 3 --retry-connrefused --connect-timeout 20)
fetch() { curl --fail "${curl_options[@]}" --output "$work/$1" "$base/$1"; }

status=$(curl "${curl_options[@]}" --output "$work/SOURCES" --write-out '%{http_code}' "$base/SOURCES") || status=000
case "$status" in
  200) ;;
  404)
    say "writ: no release $tag of $ACTION_REPOSITORY: building from source"
    found false
    exit 0
    ;;
  *)
    say "writ: could not read release $tag of $ACTION_REPOSITORY (HTTP $status): building from source"
    found false
    exit 0
    ;;
esac
key=$("$GITHUB_ACTION_PATH/scripts/source-key.sh" "$GITHUB_ACTION_PATH")
if [ "$(tr -d '[:space:]' < "$work/SOURCES")" != "$key" ]; then
  say "writ: release $tag was built from other sources than this action's: building from source"
  found false
  exit 0
fi
archive="writ-$tag-$target.tar.gz"
fetch SHA256SUMS
fetch "$archive"
expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1 }' "$work/SHA256SUMS")
if command -v sha256sum >/dev/null; then
  actual=$(sha256sum "$work/$archive" | cut -d' ' -f1)
else
  actual=$(shasum -a 256 "$work/$archive" | cut -d' ' -f1)
fi
if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
  say "writ: $archive does not match its SHA-256 in the release's SHA256SUMS (expected ${expected:-none}, got $actual): refusing it"
  exit 1
fi
if command -v gh >/dev/null; then
  if ! gh attestation verify "$work/$archive" --repo "$ACTION_REPOSITORY" >/dev/null; then
    say "writ: $archive has no build provenance from $ACTION_REPOSITORY's release workflow: refusing it"
    exit 1
  fi
else
  say "::warning::writ: the gh CLI is not installed: $archive is checked against SHA256SUMS only, not its build provenance"
fi
mkdir -p "$RUNNER_TEMP/writ/bin"
tar -xzf "$work/$archive" -C "$RUNNER_TEMP/writ/bin" writ
say "writ: using the released $tag binary for $target"
found true
