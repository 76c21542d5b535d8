#!/usr/bin/env bash
# Prints the key of writ's sources in the folder given (default: this
# repository): a SHA-256 over every file a build of the binary reads. The
# composite action (action.yml) caches its build under this key, and uses a
# released binary only when the release was built from sources with the
# same key (the release workflow publishes it as the release's SOURCES).
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
sum() {
  if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi
}
files() {
  find Cargo.lock Cargo.toml grammar compiler providers src -type f \
    \( -name '*.rs' -o -name '*.toml' -o -name '*.pest' -o -name '*.txt' -o -name 'Cargo.lock' \) -print0 \
    | LC_ALL=C sort -z
}
# Each file's name, then its content: a file renamed changes the key too.
while IFS= read -r -d '' file; do
  printf '%s\n' "$file"
  cat -- "$file"
done < <(files) | sum | cut -c1-64
