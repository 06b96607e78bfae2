/**
 * Client profiles (`paynet client-profile`, `python -m ops.clientnet`) and
 * the mutual-TLS channels they describe.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";

/** One payment instrument of the customer. The number is secret: never print it. */
export interface ProfileInstrument {
  /** `INSTRUMENT_KIND_CARD` or `INSTRUMENT_KIND_BANK_ACCOUNT`. */
  kind: string;
  /** Code of the issuing bank. */
  bank_code: string;
  /** PAN or account number (secret). */
  number: string;
}

/** A node of the network the customer talks to. */
export interface ProfileNode {
  /** Node name (the merchant name for a merchant). */
  name: string;
  /** `host:port` of its gRPC server. */
  address: string;
  /** Bank code, for banks. */
  bank_code?: string;
}

/** A customer's client profile, as printed by `paynet client-profile`. */
export interface Profile {
  /** The customer's name (also the CN of its certificate). */
  customer: string;
  /** Network CA certificate (PEM file). */
  ca_cert: string;
  /** The customer's TLS certificate (PEM file). */
  cert: string;
  /** The customer's TLS key, EC P-256 PKCS#8 PEM file. */
  key: string;
  /** The customer's Ed25519 signing key, PKCS#8 PEM file (enrolled at its bank). */
  signing_key: string;
  /** The customer's bank. */
  bank: ProfileNode & { bank_code: string };
  /** The merchant to buy from. */
  merchant: ProfileNode;
  /** The customer's account at its bank. */
  account_id: string;
  /** Account currency. */
  currency: string;
  /** The customer's instruments. */
  instruments: { card: ProfileInstrument; account: ProfileInstrument };
}

/**
 * Reads and checks a profile. Relative file paths in it are taken relative to
 * the profile's directory.
 */
export function loadProfile(path: string): Profile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read profile ${path}: ${(err as Error).message}`);
  }
  const p = raw as Profile;
  const missing = ["customer", "ca_cert", "cert", "key", "signing_key", "bank", "merchant", "account_id", "currency", "instruments"].filter(
    (k) => (p as unknown as Record<string, unknown>)[k] === undefined,
  );
  if (missing.length > 0) throw new Error(`profile ${path} lacks ${missing.join(", ")}`);
  if (!p.bank.address || !p.bank.bank_code || !p.merchant.address || !p.instruments.card || !p.instruments.account) {
    throw new Error(`profile ${path} is incomplete (bank, merchant or instruments)`);
  }
  const base = dirname(resolve(path));
  for (const k of ["ca_cert", "cert", "key", "signing_key"] as const) p[k] = resolve(base, p[k]);
  return p;
}

/** Channel credentials for mutual TLS: the customer's certificate and key, servers verified against the network CA. */
export function channelCredentials(profile: Profile): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(readFileSync(profile.ca_cert), readFileSync(profile.key), readFileSync(profile.cert));
}

/**
 * Opens a long-lived mTLS channel to a node (`host:port`). The returned grpc-js
 * client carries every service; wrap it with `createServiceClient`. Close it when done.
 */
export function connect(address: string, credentials: grpc.ChannelCredentials): grpc.Client {
  return new grpc.Client(address, credentials, {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
}
