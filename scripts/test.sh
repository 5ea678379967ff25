#!/usr/bin/env bash
# The test command: formatting, module tidiness and vet, then every test
# (mounted ones included), with the race detector on the packages that run
# concurrently.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --install
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go mod tidy"
if ! go mod tidy -diff; then echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test"
go test -race -timeout 20m -count=1 ./... 2>&1 | tee /tmp/synfs-test.log
