#!/usr/bin/env node
/**
 * The envelope tool (clients/README.md, section 3): reads one JSON object on
 * stdin, writes one on stdout.
 *
 *   node dist/envelope-cli.js seal   {gateway_public_key, signing_key_pem, instruction} -> {instruction_bytes, sealed_instruction, dual_signature}
 *   node dist/envelope-cli.js open   {gateway_private_key_pem, order_digest, sealed_instruction, dual_signature, signing_public_key}
 *                                    -> {instruction_bytes, instruction, signature_valid}
 *
 * Exit codes: 0 ok; 2 bad input (message on stderr); 3 the instruction cannot
 * be opened (`INSTRUCTION_UNREADABLE: <why>` on stderr). Hex is lowercase.
 * Secrets (keys, instrument numbers) are never written to stderr.
 */
import { fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { PaymentInstructionSchema } from "./gen/interbank/v1/common_pb.js";
import { EnvelopeError, ed25519PublicFromRaw, loadEd25519Private, openInstruction, rawX25519Private, sealInstruction, signDual, verifyDual } from "./envelope.js";

class BadInput extends Error {}
class Unreadable extends Error {}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function unhex(obj: Record<string, unknown>, field: string, length?: number): Uint8Array {
  const v = obj[field];
  if (typeof v !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) throw new BadInput(`${field} must be a hex string`);
  const bytes = new Uint8Array(Buffer.from(v, "hex"));
  if (length !== undefined && bytes.length !== length) throw new BadInput(`${field} must be ${length} bytes`);
  return bytes;
}

function text(obj: Record<string, unknown>, field: string): string {
  const v = obj[field];
  if (typeof v !== "string" || v === "") throw new BadInput(`${field} must be a non-empty string`);
  return v;
}

async function seal(input: Record<string, unknown>): Promise<unknown> {
  const gatewayPublicKey = unhex(input, "gateway_public_key", 32);
  let signingKey;
  try {
    signingKey = loadEd25519Private(text(input, "signing_key_pem"));
  } catch (err) {
    throw err instanceof EnvelopeError ? new BadInput(err.message) : err;
  }
  if (typeof input.instruction !== "object" || input.instruction === null) throw new BadInput("instruction must be the proto3 JSON of a PaymentInstruction");
  let instruction;
  try {
    instruction = fromJson(PaymentInstructionSchema, input.instruction as JsonValue);
  } catch (err) {
    // protobuf-es may quote the offending value (possibly an instrument number): report only the field name.
    const field = /field ([\w.]+)/.exec((err as Error).message)?.[1];
    throw new BadInput(`instruction is not a valid PaymentInstruction in proto3 JSON${field ? ` (field ${field})` : ""}`);
  }
  if (instruction.orderDigest.length !== 32) throw new BadInput("instruction.orderDigest must be 32 bytes");
  const bytes = toBinary(PaymentInstructionSchema, instruction);
  let sealed;
  try {
    sealed = await sealInstruction(bytes, gatewayPublicKey, instruction.orderDigest);
  } catch (err) {
    throw err instanceof EnvelopeError ? new BadInput(err.message) : err;
  }
  return {
    instruction_bytes: hex(bytes),
    sealed_instruction: hex(sealed),
    dual_signature: hex(signDual(signingKey, instruction.orderDigest, bytes)),
  };
}

async function open(input: Record<string, unknown>): Promise<unknown> {
  let gatewayKey;
  try {
    gatewayKey = rawX25519Private(text(input, "gateway_private_key_pem"));
  } catch (err) {
    throw err instanceof EnvelopeError ? new BadInput(err.message) : err;
  }
  const digest = unhex(input, "order_digest", 32);
  const sealed = unhex(input, "sealed_instruction");
  const signature = unhex(input, "dual_signature");
  const signingPublic = unhex(input, "signing_public_key", 32);
  let publicKey;
  try {
    publicKey = ed25519PublicFromRaw(signingPublic);
  } catch {
    throw new BadInput("signing_public_key is not an Ed25519 public key");
  }
  let bytes: Uint8Array;
  try {
    bytes = await openInstruction(sealed, gatewayKey, digest);
  } catch (err) {
    if (err instanceof EnvelopeError) throw new Unreadable(err.message);
    throw err;
  }
  let instruction;
  try {
    instruction = fromBinary(PaymentInstructionSchema, bytes);
  } catch {
    throw new Unreadable("the opened bytes are not a PaymentInstruction");
  }
  return {
    instruction_bytes: hex(bytes),
    instruction: toJson(PaymentInstructionSchema, instruction),
    signature_valid: verifyDual(publicKey, signature, digest, bytes),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (argv.length !== 1 || (command !== "seal" && command !== "open")) {
    process.stderr.write("usage: envelope-cli seal|open  (JSON on stdin, JSON on stdout)\n");
    return 2;
  }
  try {
    let input: unknown;
    try {
      input = JSON.parse(await readStdin());
    } catch {
      throw new BadInput("stdin is not JSON");
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) throw new BadInput("stdin must be a JSON object");
    const output = command === "seal" ? await seal(input as Record<string, unknown>) : await open(input as Record<string, unknown>);
    process.stdout.write(JSON.stringify(output) + "\n");
    return 0;
  } catch (err) {
    if (err instanceof Unreadable) {
      process.stderr.write(`INSTRUCTION_UNREADABLE: ${err.message}\n`);
      return 3;
    }
    if (err instanceof BadInput) {
      process.stderr.write(`bad input: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`envelope-cli: internal error: ${(err as Error).name}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
