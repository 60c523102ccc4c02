#!/bin/sh
# Try-on with curl: a chat completion, then the same one streamed.
#   TRYON_URL=http://127.0.0.1:8000 TRYON_KEY=sk-tryon-... sh chat.sh person.jpg garment.png
set -eu
URL="${TRYON_URL:-http://127.0.0.1:8000}/api/v1/chat/completions"
{
  printf '{"model": "auto", "messages": [{"role": "user", "content": ['
  printf '{"type": "text", "text": "Put this shirt on this person"},'
  printf '{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,'
  base64 < "$1" | tr -d '\n'
  printf '"}}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,'
  base64 < "$2" | tr -d '\n'
  printf '"}}]}], "tryon": {"image_delivery": "url"}'
} > body.json

# Plain: signed links instead of data URLs, thanks to "image_delivery": "url".
printf '}' >> body.json
curl -sS "$URL" -H "Authorization: Bearer $TRYON_KEY" -H "Content-Type: application/json" \
  --data @body.json > completion.json

# Streamed: -N prints each event as it comes.
sed 's/}$/, "stream": true}/' body.json > stream.json
curl -sSN "$URL" -H "Authorization: Bearer $TRYON_KEY" -H "Content-Type: application/json" \
  --data @stream.json
