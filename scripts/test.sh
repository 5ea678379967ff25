#!/usr/bin/env bash
# The test command: vet, then every test (mounted ones included), with the
# race detector on the packages that run concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test"
go test -race -timeout 20m -count=1 ./... 2>&1 | tee /tmp/synfs-test.log
