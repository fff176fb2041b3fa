#!/bin/sh
# Regenerates lopper_wire.pb.swift from lopper_wire.proto. Needs protoc (Debian
# protobuf-compiler) and protoc-gen-swift from swift-protobuf 1.39.0, e.g.
#   git clone <swift-protobuf> && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
# then PROTOC_GEN_SWIFT=/path/to/.build/release/protoc-gen-swift ./generate.sh
set -eu
cd "$(dirname "$0")"
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}"
protoc --plugin=protoc-gen-swift="$plugin" \
       --swift_opt=Visibility=Public \
       --swift_out=. lopper_wire.proto
echo "wrote $(pwd)/lopper_wire.pb.swift"
