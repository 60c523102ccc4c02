#!/usr/bin/env bash
# Create a key, dress the sample person in the sample T-shirt, download the result.
#
# Start the gateway first (`uv run tryon serve`), then from the repository root:
#   bash docs/examples/quickstart.sh
#
#   TRYON_CONFIG  the gateway's config file; `tryon keys create` writes to its database
#                 (default config/tryon.toml)
#   TRYON_URL     where the gateway listens (default http://127.0.0.1:8000)
#   TRYON         how to run the CLI (default "uv run tryon")
#   OUT           where to save the result (default result.png)
set -euo pipefail

TRYON_URL="${TRYON_URL:-http://127.0.0.1:8000}"
TRYON="${TRYON:-uv run tryon}"
OUT="${OUT:-result.png}"

# 1. A new account with 10 credits and a key for it. The key is shown once: keep it.
KEY=$($TRYON keys create --name quickstart --credits 10 --json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')

# 2. The try-on, as multipart: one person photo, one garment photo, files uploaded.
RESPONSE=$(curl -sS "$TRYON_URL/api/v1/tryon" \
  -H "Authorization: Bearer $KEY" \
  -F person_images=@samples/person.jpg \
  -F garment_images=@samples/garment.png \
  -F category=tops)
echo "$RESPONSE"

# 3. The result, through its signed URL: no key needed until the link expires.
URL=$(printf '%s' "$RESPONSE" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["images"][0]["url"])')
curl -sS --fail -o "$OUT" "$URL"
echo "saved $OUT"

# 4. What is left: 10 credits minus the price of one image.
curl -sS "$TRYON_URL/api/v1/credits" -H "Authorization: Bearer $KEY"
echo
