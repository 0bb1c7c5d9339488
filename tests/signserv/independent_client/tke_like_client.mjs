// An independent client, in JavaScript, that talks to a signing service exactly as the Go TKE
// client does (TKE-REFERENCE §1): raw token in Authorization, the concatenated POST body,
// strict DER SEQUENCE{X,Y} parsing, X and Y padded to 66 bytes, SKI = SHA-256(04||X||Y).
// Unlike the Go client it also verifies every signature. Usage:
//   node tke_like_client.mjs BASE_URL KEY TOKEN CONCURRENCY
// Prints one JSON line {"ski": ..., "verified": N}; exits 1 with a message on any deviation.
import { createHash, createPublicKey, verify } from "node:crypto";

const [baseUrl, keyName, token, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText || "16");
const headers = {
  Authorization: token,
  "Content-Type": "application/json",
  Accept: "application/json",
};

function fail(message) {
  console.error(`tke-like client: ${message}`);
  process.exit(1);
}

function decodeStdBase64(text, what) {
  if (typeof text !== "string") fail(`${what} is not a string`);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    fail(`${what} is not standard base64 with padding`);
  }
  return Buffer.from(text, "base64");
}

// Strict DER in the manner of Go's encoding/asn1: definite minimal lengths, minimal INTEGERs.
function readElement(bytes, offset, expectedTag, what) {
  if (bytes[offset] !== expectedTag) fail(`${what}: tag ${bytes[offset]} instead of ${expectedTag}`);
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 2) fail(`${what}: unsupported length form`);
    length = 0;
    for (let index = 0; index < count; index += 1) length = length * 256 + bytes[start + index];
    if (length < 0x80 || bytes[start] === 0) fail(`${what}: length not minimally encoded`);
    start += count;
  }
  if (start + length > bytes.length) fail(`${what}: truncated`);
  return { content: bytes.subarray(start, start + length), end: start + length };
}

function readInteger(bytes, offset, what) {
  const element = readElement(bytes, offset, 0x02, what);
  const content = element.content;
  if (content.length === 0) fail(`${what}: empty INTEGER`);
  if (content.length > 1 && content[0] === 0 && content[1] < 0x80) {
    fail(`${what}: integer not minimally-encoded`);
  }
  let magnitude = content;
  while (magnitude.length > 0 && magnitude[0] === 0) magnitude = magnitude.subarray(1);
  if (magnitude.length > 66) fail("Only P521 EC keys are supported.");
  const padded = Buffer.alloc(66);
  magnitude.copy(padded, 66 - magnitude.length);
  return { value: padded, end: element.end };
}

async function call(method, path, body) {
  const response = await fetch(baseUrl + path, { method, headers, body, redirect: "manual" });
  const text = await response.text();
  if (response.status < 200 || response.status > 299) {
    fail(`${method} ${path}: status ${response.status}, body ${text}`);
  }
  if (text.length === 0) fail(`${method} ${path}: empty response body`);
  return JSON.parse(text);
}

const keyDocument = await call("GET", "/keys/" + keyName);
const der = decodeStdBase64(keyDocument.publickey, "publickey");
const sequence = readElement(der, 0, 0x30, "public key");
const x = readInteger(sequence.content, 0, "X");
const y = readInteger(sequence.content, x.end, "Y");
const point = Buffer.concat([Buffer.from([4]), x.value, y.value]);
const ski = createHash("sha256").update(point).digest("hex");
const publicKey = createPublicKey({
  key: { kty: "EC", crv: "P-521", x: x.value.toString("base64url"), y: y.value.toString("base64url") },
  format: "jwk",
});

async function signAndVerify(data) {
  // The body is built by concatenation, as the Go client does (TKE-REFERENCE §1.3).
  const body = '{"hash_algorithm":"sha2-512","input":"' + data.toString("base64") + '"}';
  const document = await call("POST", "/sign/" + keyName, body);
  const signature = decodeStdBase64(document.signature, "signature");
  if (!verify("sha512", data, { key: publicKey, dsaEncoding: "der" }, signature)) {
    fail(`signature over ${data.length} bytes does not verify`);
  }
}

const certificateHash = createHash("sha512").update("TBSCertificate stand-in").digest();
const inputs = [Buffer.alloc(100), Buffer.from("hello"), certificateHash, Buffer.alloc(650, 0x5a)];
for (let index = 0; index < concurrency; index += 1) inputs.push(Buffer.from(`command block ${index}`));
await Promise.all(inputs.map(signAndVerify));
console.log(JSON.stringify({ ski, verified: inputs.length }));
