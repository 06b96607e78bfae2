/**
 * The envelope against clients/vectors/envelope.json (no network), and the
 * envelope tool's JSON protocol.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { PaymentInstructionSchema } from "../gen/interbank/v1/common_pb.js";
import {
  dualSignatureMessage,
  ed25519PrivateFromSeed,
  EnvelopeError,
  hpkeInfo,
  loadEd25519Private,
  openInstruction,
  orderDigest,
  orderDigestText,
  rawPublic,
  rawX25519Private,
  sealInstruction,
  signDual,
  verifyDual,
} from "../envelope.js";

const vectorsPath = process.env.PAYNET_VECTORS ?? fileURLToPath(new URL("../../../vectors/envelope.json", import.meta.url));
const v = JSON.parse(readFileSync(vectorsPath, "utf8"));
const cli = fileURLToPath(new URL("../envelope-cli.js", import.meta.url));

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

const order = {
  orderId: v.order.order_id,
  merchantName: v.order.merchant_name,
  customerName: v.order.customer_name,
  currencyCode: v.order.currency_code,
  totalMinor: BigInt(v.order.total_minor),
  lines: v.order.lines.map((l: { sku: string; quantity: number; unit_price_minor: number }) => ({
    sku: l.sku,
    quantity: l.quantity,
    unitPriceMinor: BigInt(l.unit_price_minor),
  })),
};
const digest = unhex(v.order_digest);
const instructionBytes = unhex(v.instruction_bytes);

describe("envelope vectors", () => {
  it("order digest text and digest", () => {
    assert.equal(orderDigestText(order), v.order_digest_text);
    assert.equal(hex(orderDigest(order)), v.order_digest);
  });

  it("instruction proto3 JSON serializes to instruction_bytes, and back", () => {
    const instruction = fromJson(PaymentInstructionSchema, v.instruction as JsonValue);
    assert.equal(hex(toBinary(PaymentInstructionSchema, instruction)), v.instruction_bytes);
    assert.deepEqual(toJson(PaymentInstructionSchema, fromBinary(PaymentInstructionSchema, instructionBytes)), v.instruction);
    assert.equal(hex(instruction.orderDigest), v.order_digest);
  });

  it("HPKE info", () => {
    assert.deepEqual(v.hpke_suite, { kem_id: 0x20, kdf_id: 1, aead_id: 1, mode: 0 });
    assert.equal(hex(hpkeInfo(digest)), v.hpke_info);
    assert.equal(v.hpke_aad, "");
  });

  it("dual signature from the seed and from the PEM", () => {
    const key = ed25519PrivateFromSeed(unhex(v.signing_private_key));
    assert.equal(hex(rawPublic(key)), v.signing_public_key);
    assert.equal(hex(dualSignatureMessage(digest, instructionBytes)), v.dual_signature_message);
    assert.equal(hex(signDual(key, digest, instructionBytes)), v.dual_signature);
    assert.equal(hex(signDual(loadEd25519Private(v.signing_private_key_pem), digest, instructionBytes)), v.dual_signature);
    assert.ok(verifyDual(unhex(v.signing_public_key), unhex(v.dual_signature), digest, instructionBytes));
    assert.ok(!verifyDual(unhex(v.signing_public_key), unhex(v.dual_signature), unhex(v.wrong_order_digest), instructionBytes));
  });

  it("sealed_instruction opens with the gateway key (raw and PEM)", async () => {
    assert.equal(hex(rawX25519Private(v.gateway_private_key_pem)), v.gateway_private_key);
    assert.equal(hex(await openInstruction(unhex(v.sealed_instruction), unhex(v.gateway_private_key), digest)), v.instruction_bytes);
    assert.equal(hex(await openInstruction(unhex(v.sealed_instruction), v.gateway_private_key_pem, digest)), v.instruction_bytes);
  });

  it("sealed_instruction does not open for wrong_order_digest, nor tampered", async () => {
    await assert.rejects(openInstruction(unhex(v.sealed_instruction), unhex(v.gateway_private_key), unhex(v.wrong_order_digest)), EnvelopeError);
    const tampered = unhex(v.sealed_instruction);
    tampered[tampered.length - 1] ^= 1;
    await assert.rejects(openInstruction(tampered, unhex(v.gateway_private_key), digest), EnvelopeError);
  });

  it("a fresh sealing opens again, and only for its digest", async () => {
    const sealed = await sealInstruction(instructionBytes, unhex(v.gateway_public_key), digest);
    assert.equal(sealed.length, 32 + instructionBytes.length + 16);
    assert.notEqual(hex(sealed), v.sealed_instruction);
    assert.equal(hex(await openInstruction(sealed, unhex(v.gateway_private_key), digest)), v.instruction_bytes);
    await assert.rejects(openInstruction(sealed, unhex(v.gateway_private_key), unhex(v.wrong_order_digest)), EnvelopeError);
  });
});

function runCli(command: string, input: unknown): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, command], { input: typeof input === "string" ? input : JSON.stringify(input), encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("envelope tool", () => {
  const openInput = (sealed: string, signature: string, orderDigestHex = v.order_digest) => ({
    gateway_private_key_pem: v.gateway_private_key_pem,
    order_digest: orderDigestHex,
    sealed_instruction: sealed,
    dual_signature: signature,
    signing_public_key: v.signing_public_key,
  });

  it("seal then open round-trips", () => {
    const sealed = runCli("seal", { gateway_public_key: v.gateway_public_key, signing_key_pem: v.signing_private_key_pem, instruction: v.instruction });
    assert.equal(sealed.status, 0, sealed.stderr);
    const out = JSON.parse(sealed.stdout);
    assert.equal(out.instruction_bytes, v.instruction_bytes);
    assert.equal(out.dual_signature, v.dual_signature);
    const opened = runCli("open", openInput(out.sealed_instruction, out.dual_signature));
    assert.equal(opened.status, 0, opened.stderr);
    const back = JSON.parse(opened.stdout);
    assert.equal(back.instruction_bytes, v.instruction_bytes);
    assert.deepEqual(back.instruction, v.instruction);
    assert.equal(back.signature_valid, true);
  });

  it("opens the vector's sealed_instruction; a wrong signature is reported, not fatal", () => {
    const ok = runCli("open", openInput(v.sealed_instruction, v.dual_signature));
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).signature_valid, true);
    const bad = runCli("open", openInput(v.sealed_instruction, "00".repeat(64)));
    assert.equal(bad.status, 0, bad.stderr);
    assert.equal(JSON.parse(bad.stdout).signature_valid, false);
  });

  it("exit 3 with INSTRUCTION_UNREADABLE for another digest", () => {
    const r = runCli("open", openInput(v.sealed_instruction, v.dual_signature, v.wrong_order_digest));
    assert.equal(r.status, 3);
    assert.match(r.stderr, /^INSTRUCTION_UNREADABLE: /);
    assert.equal(r.stdout, "");
  });

  it("exit 2 on bad input, without echoing secrets", () => {
    assert.equal(runCli("seal", "not json").status, 2);
    assert.equal(runCli("frobnicate", {}).status, 2);
    assert.equal(runCli("open", { ...openInput(v.sealed_instruction, v.dual_signature), order_digest: "xyz" }).status, 2);
    const r = runCli("seal", { gateway_public_key: v.gateway_public_key, signing_key_pem: "garbage", instruction: v.instruction });
    assert.equal(r.status, 2);
    const wrongType = runCli("seal", {
      gateway_public_key: v.gateway_public_key,
      signing_key_pem: v.signing_private_key_pem,
      instruction: { ...v.instruction, instrument: { ...v.instruction.instrument, number: 4000001234567899 } },
    });
    assert.equal(wrongType.status, 2);
    assert.ok(!wrongType.stderr.includes("4000001234567899"), "instrument number leaked to stderr");
  });
});
