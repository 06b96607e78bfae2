/**
 * The payment envelope (docs/envelope.md): order digest, HPKE sealing of the
 * payment instruction to the gateway, and the customer's Ed25519 dual signature.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";
import type { Order } from "./gen/interbank/v1/order_pb.js";

/** First 32 bytes of the HPKE `info`: ASCII "interbank.v1 payment instruction". */
export const HPKE_INFO_PREFIX = new TextEncoder().encode("interbank.v1 payment instruction");
/** Length of the HPKE encapsulated key that starts a sealed instruction. */
export const ENC_LENGTH = 32;
const TAG_LENGTH = 16;

/** A sealed instruction could not be opened, or a key or digest is malformed. */
export class EnvelopeError extends Error {
  override name = "EnvelopeError";
}

/** The parts of an order that enter its digest. */
export interface OrderDigestInput {
  orderId: string;
  merchantName: string;
  customerName: string;
  /** Currency of the order total. */
  currencyCode: string;
  /** Order total in minor units. */
  totalMinor: bigint | number;
  /** The order lines, in order. */
  lines: ReadonlyArray<{ sku: string; quantity: number; unitPriceMinor: bigint | number }>;
}

/** The canonical UTF-8 text whose SHA-256 is the order digest (every line ends with "\n"). */
export function orderDigestText(order: OrderDigestInput): string {
  let text = `interbank.v1.order\n${order.orderId}\n${order.merchantName}\n${order.customerName}\n${order.currencyCode}\n${BigInt(order.totalMinor)}\n`;
  for (const line of order.lines) text += `${line.sku}:${line.quantity}:${BigInt(line.unitPriceMinor)}\n`;
  return text;
}

/** The order digest: SHA-256 (32 bytes) of {@link orderDigestText}. */
export function orderDigest(order: OrderDigestInput): Uint8Array {
  return sha256(new TextEncoder().encode(orderDigestText(order)));
}

/** The digest input of a protobuf `Order` as returned by `CreateOrder` (currency taken from `total`). */
export function orderDigestInputOf(order: Order): OrderDigestInput {
  return {
    orderId: order.orderId,
    merchantName: order.merchantName,
    customerName: order.customerName,
    currencyCode: order.total?.currencyCode ?? "",
    totalMinor: order.total?.amountMinor ?? 0n,
    lines: order.lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unitPriceMinor: l.unitPrice?.amountMinor ?? 0n })),
  };
}

/** Recomputes the digest of a protobuf `Order`; compare it with `order.orderDigest` before paying. */
export function orderDigestOf(order: Order): Uint8Array {
  return orderDigest(orderDigestInputOf(order));
}

/** HPKE `info`: {@link HPKE_INFO_PREFIX} || the 32-byte order digest. */
export function hpkeInfo(digest: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new EnvelopeError("order digest must be 32 bytes");
  const info = new Uint8Array(HPKE_INFO_PREFIX.length + 32);
  info.set(HPKE_INFO_PREFIX, 0);
  info.set(digest, HPKE_INFO_PREFIX.length);
  return info;
}

function suite(): CipherSuite {
  return new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });
}

/**
 * Seals instruction bytes to the gateway (HPKE base mode, single shot,
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, empty aad), bound to
 * one order by its digest. Returns enc (32 bytes) || ciphertext.
 *
 * @param instruction the serialized `PaymentInstruction` (the instruction bytes)
 * @param gatewayPublicKey `CreateOrderResponse.gateway_public_key`, 32 raw X25519 bytes
 * @param digest the order digest (32 bytes)
 */
export async function sealInstruction(instruction: Uint8Array, gatewayPublicKey: Uint8Array, digest: Uint8Array): Promise<Uint8Array> {
  if (gatewayPublicKey.length !== 32) throw new EnvelopeError("gateway public key must be 32 raw X25519 bytes");
  const s = suite();
  const recipientPublicKey = await s.kem.deserializePublicKey(toArrayBuffer(gatewayPublicKey)).catch(() => {
    throw new EnvelopeError("gateway public key is not a valid X25519 key");
  });
  const { enc, ct } = await s.seal({ recipientPublicKey, info: toArrayBuffer(hpkeInfo(digest)) }, toArrayBuffer(instruction), new ArrayBuffer(0));
  const sealed = new Uint8Array(enc.byteLength + ct.byteLength);
  sealed.set(new Uint8Array(enc), 0);
  sealed.set(new Uint8Array(ct), enc.byteLength);
  return sealed;
}

/**
 * Opens a sealed instruction with the gateway's X25519 private key (32 raw
 * bytes, or a PKCS#8 PEM / KeyObject). Throws {@link EnvelopeError} if it was
 * tampered with or sealed for another order digest.
 */
export async function openInstruction(sealed: Uint8Array, gatewayPrivateKey: Uint8Array | string | KeyObject, digest: Uint8Array): Promise<Uint8Array> {
  const info = hpkeInfo(digest);
  if (sealed.length <= ENC_LENGTH + TAG_LENGTH) throw new EnvelopeError("sealed instruction is too short");
  const raw = gatewayPrivateKey instanceof Uint8Array ? gatewayPrivateKey : rawX25519Private(gatewayPrivateKey);
  if (raw.length !== 32) throw new EnvelopeError("gateway private key must be 32 raw X25519 bytes");
  const s = suite();
  const recipientKey = await s.kem.deserializePrivateKey(toArrayBuffer(raw));
  try {
    const pt = await s.open(
      { recipientKey, enc: toArrayBuffer(sealed.subarray(0, ENC_LENGTH)), info: toArrayBuffer(info) },
      toArrayBuffer(sealed.subarray(ENC_LENGTH)),
      new ArrayBuffer(0),
    );
    return new Uint8Array(pt);
  } catch {
    throw new EnvelopeError("sealed instruction cannot be opened (tampered with, or sealed for another order or key)");
  }
}

/** The 64 bytes the dual signature covers: order digest || SHA-256(instruction bytes). */
export function dualSignatureMessage(digest: Uint8Array, instruction: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new EnvelopeError("order digest must be 32 bytes");
  const msg = new Uint8Array(64);
  msg.set(digest, 0);
  msg.set(sha256(instruction), 32);
  return msg;
}

/** The customer's dual signature (Ed25519, pure, 64 bytes) over the order digest and the instruction bytes. */
export function signDual(signingKey: KeyObject, digest: Uint8Array, instruction: Uint8Array): Uint8Array {
  if (signingKey.asymmetricKeyType !== "ed25519" || signingKey.type !== "private") throw new EnvelopeError("signing key must be an Ed25519 private key");
  return new Uint8Array(sign(null, dualSignatureMessage(digest, instruction), signingKey));
}

/** True if `signature` is the dual signature of `publicKey` (KeyObject or 32 raw bytes) over digest and instruction. */
export function verifyDual(publicKey: KeyObject | Uint8Array, signature: Uint8Array, digest: Uint8Array, instruction: Uint8Array): boolean {
  const key = publicKey instanceof Uint8Array ? ed25519PublicFromRaw(publicKey) : publicKey;
  if (signature.length !== 64) return false;
  try {
    return verify(null, dualSignatureMessage(digest, instruction), key, signature);
  } catch {
    return false;
  }
}

/** An Ed25519 signing key from PKCS#8 PEM (the profile's `signing_key` file). */
export function loadEd25519Private(pem: string | Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new EnvelopeError("signing key is not a readable PKCS#8 PEM private key");
  }
  if (key.asymmetricKeyType !== "ed25519") throw new EnvelopeError("signing key is not an Ed25519 key");
  return key;
}

/** An Ed25519 private key from its 32-byte seed (RFC 8032 private key). */
export function ed25519PrivateFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new EnvelopeError("Ed25519 seed must be 32 bytes");
  // PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) is a fixed 16-byte prefix followed by the seed.
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

/** An Ed25519 public key from its 32 raw bytes. */
export function ed25519PublicFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new EnvelopeError("Ed25519 public key must be 32 bytes");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(raw) }, format: "jwk" });
}

/** The raw 32 bytes of an Ed25519 or X25519 public key (or of the public half of a private key). */
export function rawPublic(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  const jwk = pub.export({ format: "jwk" });
  if (typeof jwk.x !== "string") throw new EnvelopeError("not an OKP key");
  return new Uint8Array(Buffer.from(jwk.x, "base64url"));
}

/** The raw 32 bytes of an X25519 private key given as PKCS#8 PEM or KeyObject (e.g. the gateway's HPKE key). */
export function rawX25519Private(key: string | Buffer | KeyObject): Uint8Array {
  let k: KeyObject;
  try {
    k = typeof key === "string" || Buffer.isBuffer(key) ? createPrivateKey(key) : key;
  } catch {
    throw new EnvelopeError("gateway private key is not a readable PKCS#8 PEM private key");
  }
  if (k.asymmetricKeyType !== "x25519" || k.type !== "private") throw new EnvelopeError("gateway private key is not an X25519 private key");
  const jwk = k.export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.d as string, "base64url"));
}

/** SHA-256 of bytes. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

// A copy in a fresh ArrayBuffer of exactly these bytes. (Not `bytes.slice()`: a Node Buffer's
// slice is a view into its shared pool, so its `.buffer` would hold unrelated bytes.)
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}
