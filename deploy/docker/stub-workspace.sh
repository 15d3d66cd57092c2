#!/bin/sh
# Turn a tree that holds only the workspace's manifests (Cargo.toml, Cargo.lock, crates/*/Cargo.toml,
# vendor/) into one cargo can build: an empty source file for every target a manifest declares.
# deploy/Dockerfile runs it so that its dependency layer compiles every third-party crate without
# our sources, and is rebuilt only when a manifest or the lock file changes. Run from the root.
# POSIX sh and awk only: the build image has no Python.
set -eu

# Print the source path of every target in one manifest, defaults as cargo infers them
# (https://doc.rust-lang.org/cargo/reference/cargo-targets.html#target-auto-discovery).
target_paths() {
  awk '
    function flush() {
      if (kind == "") return
      if (path != "") print path
      else if (kind == "lib") print "src/lib.rs"
      else if (kind == "bin") print "src/bin/" name ".rs"
      else if (kind == "test") print "tests/" name ".rs"
      else if (kind == "bench") print "benches/" name ".rs"
      else if (kind == "example") print "examples/" name ".rs"
      kind = ""; name = ""; path = ""
    }
    /^\[/ {
      flush()
      if ($0 ~ /^\[lib\]/) { kind = "lib"; has_lib = 1 }
      else if (match($0, /^\[\[(bin|test|bench|example)\]\]/)) {
        kind = substr($0, 3, RLENGTH - 4); if (kind == "bin") has_bin = 1
      }
      next
    }
    kind != "" && /^[ \t]*name[ \t]*=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); name = v }
    kind != "" && /^[ \t]*path[ \t]*=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); path = v }
    END { flush(); if (!has_bin && !has_lib) print "src/lib.rs" }
  ' "$1"
}

for manifest in crates/*/Cargo.toml; do
  dir=${manifest%/Cargo.toml}
  target_paths "$manifest" | while read -r rel; do
    file="$dir/$rel"
    mkdir -p "$(dirname "$file")"
    case "$rel" in
      *lib.rs) : >"$file" ;;
      *) echo 'fn main() {}' >"$file" ;;
    esac
  done
done
