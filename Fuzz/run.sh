#!/usr/bin/env bash
# Builds one libFuzzer target and runs it.
#
#   Fuzz/run.sh TARGET SECONDS [extra libFuzzer flags…]
#   Fuzz/run.sh TARGET build          # build only
#
# TARGET is one of: fuzz-wire-bodies fuzz-names-and-tokens fuzz-property-codec fuzz-options-and-filters
# fuzz-amqp-codec. The first four are built here from Sources/ with swiftc; fuzz-amqp-codec, whose
# module needs SwiftNIO, is the package's FuzzAMQPCodec product built by SwiftPM with the same
# sanitizers, into .build-fuzz.
# HeraldCore and HeraldWire are compiled from Sources/ with coverage instrumentation and address
# sanitizer (-sanitize=fuzzer,address), then linked with Fuzz/Support.swift and the target's
# LLVMFuzzerTestOneInput. Outputs go to .build-fuzz/; the corpus is Fuzz/corpus/TARGET/ (seeds
# committed; new inputs land in .build-fuzz/corpus/TARGET/). A crash is written to
# .build-fuzz/crashes/TARGET/ and the script exits non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${1:?usage: Fuzz/run.sh TARGET SECONDS|build [libFuzzer flags]}"
SECONDS_TO_RUN="${2:?usage: Fuzz/run.sh TARGET SECONDS|build [libFuzzer flags]}"
shift 2
SWIFTC="${SWIFTC:-swiftc}"
command -v "$SWIFTC" >/dev/null || SWIFTC=/opt/swift/usr/bin/swiftc
OUT="$ROOT/.build-fuzz"
if [ "$TARGET" = fuzz-amqp-codec ]; then
    mkdir -p "$OUT/bin" "$OUT/corpus/$TARGET" "$OUT/crashes/$TARGET"
    # lld: gold fails on the sanitized objects. -DFUZZING: libFuzzer's entry instead of the replay driver.
    swift build --package-path "$ROOT" -c debug --build-path "$OUT" --product FuzzAMQPCodec \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
    cp "$OUT/debug/FuzzAMQPCodec" "$OUT/bin/$TARGET"
    [ "$SECONDS_TO_RUN" = build ] && exit 0
    export SWIFT_BACKTRACE=enable=no
    exec "$OUT/bin/$TARGET" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$OUT/crashes/$TARGET/" "$@" "$OUT/corpus/$TARGET" "$ROOT/Fuzz/corpus/$TARGET"
fi
[ -f "$ROOT/Fuzz/Targets/$TARGET.swift" ] || { echo "no such target: $TARGET" >&2; exit 2; }

MODULES="$OUT/modules"
mkdir -p "$MODULES" "$OUT/bin" "$OUT/corpus/$TARGET" "$OUT/crashes/$TARGET"
FLAGS=(-swift-version 6 -O -g -sanitize=fuzzer,address -parse-as-library -use-ld=lld
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility
    -enable-upcoming-feature InternalImportsByDefault
    # One package, as SwiftPM builds it: the targets use HeraldCore's `package` helpers.
    -package-name herald)

# One module at a time; rebuilt when a source, an imported module or this script is newer than its object.
# Arguments: the module name, then the objects of the modules it imports.
build_module() {
    local name="$1"; shift
    local object="$MODULES/$name.o"
    local sources=("$ROOT/Sources/$name"/*.swift)
    if [ -f "$object" ] && [ -z "$(find "${sources[@]}" "$@" "$0" -newer "$object" 2>/dev/null)" ]; then return; fi
    echo "building $name" >&2
    "$SWIFTC" "${FLAGS[@]}" -module-name "$name" -wmo -c "${sources[@]}" -I "$MODULES" \
        -emit-module -emit-module-path "$MODULES/$name.swiftmodule" -o "$object"
    touch "$object" # swiftc leaves an unchanged output's time as it was
}
build_module HeraldCore
build_module HeraldWire "$MODULES/HeraldCore.o"
BINARY="$OUT/bin/$TARGET"
echo "linking $TARGET" >&2
"$SWIFTC" "${FLAGS[@]}" -module-name FuzzTarget -I "$MODULES" \
    "$ROOT/Fuzz/Support.swift" "$ROOT/Fuzz/Targets/$TARGET.swift" "$MODULES/HeraldCore.o" "$MODULES/HeraldWire.o" -o "$BINARY"
[ "$SECONDS_TO_RUN" = build ] && exit 0

case "$TARGET" in
    fuzz-names-and-tokens) MAX_LEN=1100 ;;
    fuzz-property-codec) MAX_LEN=2048 ;;
    *) MAX_LEN=4096 ;;
esac
# The Swift backtracer would keep the output pipe open after a crash (RELIABILITY.md §6).
export SWIFT_BACKTRACE=enable=no
exec "$BINARY" -max_total_time="$SECONDS_TO_RUN" -max_len="$MAX_LEN" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/crashes/$TARGET/" "$@" "$OUT/corpus/$TARGET" "$ROOT/Fuzz/corpus/$TARGET"
