#!/usr/bin/env bash
# Builds the phoebe Java test app: build.sh OUTDIR -> OUTDIR/phoebe-testapp.jar (path printed on stdout).
# Needs javac and jar (JDK 17+). Exit 2 on usage error, 3 if javac is missing. Idempotent: each run
# compiles into a fresh temporary classes dir under OUTDIR and replaces the jar atomically.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: build.sh OUTDIR" >&2
    exit 2
fi
if ! command -v javac >/dev/null 2>&1; then
    echo "build.sh: javac not found" >&2
    exit 3
fi
if ! command -v jar >/dev/null 2>&1; then
    echo "build.sh: jar not found" >&2
    exit 3
fi

src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/src"
mkdir -p "$1"
out_dir="$(cd "$1" && pwd)"
classes="$(mktemp -d "$out_dir/classes.XXXXXX")"
trap 'rm -rf "$classes"' EXIT

javac --release 17 -Xlint:all -Werror -d "$classes/out" "$src_dir/phoebe/testapp/App.java"
jar --create --file "$classes/phoebe-testapp.jar" --main-class phoebe.testapp.App -C "$classes/out" .
mv -f "$classes/phoebe-testapp.jar" "$out_dir/phoebe-testapp.jar"
echo "$out_dir/phoebe-testapp.jar"
