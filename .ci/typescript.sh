#!/usr/bin/env bash
# Proof that openapi/openapi.json makes a usable TypeScript client for the MSPbots frontend:
# openapi-typescript generates tests/conformance/typescript/schema.d.ts from the committed
# spec, and tsc (strict) type-checks client.ts, which signs in, verifies a code and reads and
# changes the tenant policy through openapi-fetch with those types. coverage.mjs fails first
# when an operation of the spec is called nowhere in client.ts.
#
# Needs: node >= 18 and npm. Installs the pinned devDependencies (package-lock.json) into
# tests/conformance/typescript/node_modules with `npm ci`; nothing globally.
set -euo pipefail

cd "$(dirname "$0")/../tests/conformance/typescript"
npm ci --no-audit --no-fund --loglevel=error
npx --no-install openapi-typescript ../../../openapi/openapi.json --output schema.d.ts
node coverage.mjs ../../../openapi/openapi.json client.ts
npx --no-install tsc --noEmit -p tsconfig.json
echo "typescript: client.ts type-checks against the client generated from openapi/openapi.json"
