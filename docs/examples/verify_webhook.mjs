// Verify a tryon-core webhook in Node.js: copy `verify` into your receiver (no dependencies).
//
//   TRYON_WEBHOOK_SECRET=whsec_... node verify_webhook.mjs "$TRYON_SIGNATURE" < body.json
//
// exits 0 and prints `valid` when the Tryon-Signature header signs the body, else 1.

import { createHmac, timingSafeEqual } from "node:crypto";
import { pathToFileURL } from "node:url";

// `body` is the raw request body (a Buffer), exactly as received: not re-serialized JSON.
export function verify(secret, header, body, tolerance = 300) {
  let timestamp = null;
  const signatures = [];
  for (const part of header.split(",")) {
    const [key, value = ""] = part.trim().split("=", 2);
    if (key === "t" && /^\d+$/.test(value)) timestamp = Number(value);
    else if (key === "v1") signatures.push(value);
  }
  if (timestamp === null || Math.abs(Date.now() / 1000 - timestamp) > tolerance) {
    return false; // missing, or too old (a replay) or too far ahead
  }
  const expected = createHmac("sha256", secret)
    .update(`${timestamp}.`)
    .update(body)
    .digest();
  return signatures.some((signature) => {
    const given = Buffer.from(signature, "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const valid = verify(process.env.TRYON_WEBHOOK_SECRET, process.argv[2], Buffer.concat(chunks));
  console.log(valid ? "valid" : "invalid");
  process.exit(valid ? 0 : 1);
}
