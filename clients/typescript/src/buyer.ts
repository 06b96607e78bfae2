/**
 * A customer of the network: browses a merchant, places orders, pays them with
 * a sealed, dual-signed instruction, answers challenges with the one-time code
 * from its bank's device inbox, and reads its account.
 */
import { randomBytes, randomUUID, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { status as grpcStatus } from "@grpc/grpc-js";
import { AccountService, type GetBalanceResponse, type ListStatementResponse } from "./gen/interbank/v1/account_pb.js";
import { type AnswerChallengeResponse, ChallengeService } from "./gen/interbank/v1/authorization_pb.js";
import {
  InstrumentKindSchema,
  MoneySchema,
  type PaymentInstruction,
  PaymentInstructionSchema,
  type SealedPayment,
  SealedPaymentSchema,
} from "./gen/interbank/v1/common_pb.js";
import { NotificationService } from "./gen/interbank/v1/notification_pb.js";
import { type Order, OrderService, OrderStatus, type Product } from "./gen/interbank/v1/order_pb.js";
import { loadEd25519Private, orderDigestOf, sealInstruction, signDual } from "./envelope.js";
import { channelCredentials, connect, loadProfile, type Profile, type ProfileInstrument } from "./profile.js";
import { createServiceClient, hasStatus, isCancelled, type ClientOf, type ServerStream } from "./rpc.js";

/** Which of the profile's instruments to pay with. */
export type InstrumentChoice = "card" | "account";

/** An order as created at the merchant, with what is needed to seal a payment for it. */
export interface PlacedOrder {
  /** The order, in status CREATED. */
  order: Order;
  /** Its digest, recomputed and checked equal to `order.orderDigest`. */
  digest: Uint8Array;
  /** The gateway's X25519 public key (32 raw bytes). */
  gatewayPublicKey: Uint8Array;
  /** Identifier of that key, echoed in `SealedPayment.gatewayKeyId`. */
  gatewayKeyId: string;
}

/** The order the merchant returned does not hash to the digest it claims: do not pay it. */
export class OrderDigestMismatchError extends Error {
  override name = "OrderDigestMismatchError";
}

/** An order reached a terminal state other than the one awaited, or did not reach it in time. */
export class OrderStatusError extends Error {
  override name = "OrderStatusError";
}

/** The name of an order status without its prefix, e.g. `DELIVERY_CONFIRMED`. */
export function orderStatusName(status: OrderStatus): string {
  return OrderStatus[status] ?? String(status);
}

const TERMINAL = new Set([OrderStatus.FAILED, OrderStatus.CANCELED, OrderStatus.REVERSED, OrderStatus.REFUNDED]);

interface Inbox {
  codes: Map<string, string>;
  waiters: Set<() => void>;
  cursor: bigint;
  stream?: ServerStream<unknown>;
  stopped: boolean;
  error?: Error;
  done?: Promise<void>;
}

/** One customer, built from a client profile. Call {@link Buyer.close} when done. */
export class Buyer {
  /** The profile the buyer was built from. */
  readonly profile: Profile;
  /** OrderService at the merchant. */
  readonly orders: ClientOf<typeof OrderService>;
  /** AccountService at the customer's bank. */
  readonly accounts: ClientOf<typeof AccountService>;
  /** ChallengeService at the customer's bank. */
  readonly challenges: ClientOf<typeof ChallengeService>;
  /** NotificationService at the customer's bank (the device inbox). */
  readonly bankNotifications: ClientOf<typeof NotificationService>;
  private readonly signingKey: KeyObject;
  private readonly merchantChannel: grpc.Client;
  private readonly bankChannel: grpc.Client;
  private inbox?: Inbox;

  /** Opens mTLS channels to the profile's merchant and bank (lazily connected). */
  constructor(profile: Profile) {
    this.profile = profile;
    this.signingKey = loadEd25519Private(readFileSync(profile.signing_key));
    const creds = channelCredentials(profile);
    this.merchantChannel = connect(profile.merchant.address, creds);
    this.bankChannel = connect(profile.bank.address, creds);
    this.orders = createServiceClient(OrderService, this.merchantChannel);
    this.accounts = createServiceClient(AccountService, this.bankChannel);
    this.challenges = createServiceClient(ChallengeService, this.bankChannel);
    this.bankNotifications = createServiceClient(NotificationService, this.bankChannel);
  }

  /** A buyer from the profile file at `path`. */
  static fromProfileFile(path: string): Buyer {
    return new Buyer(loadProfile(path));
  }

  /** The merchant's catalog. */
  async listProducts(): Promise<Product[]> {
    return (await this.orders.listProducts({})).products;
  }

  /**
   * Creates an order and checks its digest; throws {@link OrderDigestMismatchError}
   * if the merchant's digest differs from the recomputed one.
   */
  async createOrder(lines: ReadonlyArray<{ sku: string; quantity: number }>): Promise<PlacedOrder> {
    const reply = await this.orders.createOrder({ requestId: randomUUID(), lines: lines.map((l) => ({ ...l })) });
    const order = reply.order;
    if (!order) throw new Error("CreateOrder returned no order");
    const digest = orderDigestOf(order);
    if (!bytesEqual(digest, order.orderDigest)) {
      throw new OrderDigestMismatchError(`order ${order.orderId}: the merchant's order digest differs from the recomputed one; refusing to pay`);
    }
    return { order, digest, gatewayPublicKey: reply.gatewayPublicKey, gatewayKeyId: reply.gatewayKeyId };
  }

  /** The profile's instrument as a protobuf `PaymentInstrument` initializer. */
  instrument(choice: InstrumentChoice): { kind: number; bankCode: string; number: string } {
    const p: ProfileInstrument = this.profile.instruments[choice];
    const kind = InstrumentKindSchema.values.find((v) => v.name === p.kind);
    if (!kind) throw new Error(`profile instrument ${choice} has an unknown kind ${p.kind}`);
    return { kind: kind.number, bankCode: p.bank_code, number: p.number };
  }

  /** A fresh payment instruction for an order: amount = order total, 16-byte random nonce, created now. */
  buildInstruction(placed: PlacedOrder, choice: InstrumentChoice): PaymentInstruction {
    const { order } = placed;
    return create(PaymentInstructionSchema, {
      instrument: this.instrument(choice),
      amount: create(MoneySchema, { amountMinor: order.total?.amountMinor ?? 0n, currencyCode: order.total?.currencyCode ?? "" }),
      orderDigest: placed.digest,
      orderId: order.orderId,
      merchantName: order.merchantName,
      customerName: order.customerName,
      nonce: new Uint8Array(randomBytes(16)),
      createdAt: timestampNow(),
    });
  }

  /** Serializes, seals (HPKE to the gateway) and dual-signs an instruction. */
  async sealPayment(placed: PlacedOrder, instruction: PaymentInstruction): Promise<SealedPayment> {
    const instructionBytes = toBinary(PaymentInstructionSchema, instruction);
    return create(SealedPaymentSchema, {
      sealedInstruction: await sealInstruction(instructionBytes, placed.gatewayPublicKey, placed.digest),
      dualSignature: signDual(this.signingKey, placed.digest, instructionBytes),
      gatewayKeyId: placed.gatewayKeyId,
    });
  }

  /** Builds, seals and signs the payment of an order with an instrument, and submits it; returns the order as the merchant answers. */
  async pay(placed: PlacedOrder, choice: InstrumentChoice): Promise<Order> {
    const payment = await this.sealPayment(placed, this.buildInstruction(placed, choice));
    const reply = await this.orders.submitPayment({ requestId: randomUUID(), orderId: placed.order.orderId, payment }, { timeoutMs: 30_000 });
    if (!reply.order) throw new Error("SubmitPayment returned no order");
    return reply.order;
  }

  /** Asks the merchant to finish a payment whose challenge has been answered. */
  async completePayment(orderId: string): Promise<Order> {
    const reply = await this.orders.completePayment({ requestId: randomUUID(), orderId }, { timeoutMs: 30_000 });
    if (!reply.order) throw new Error("CompletePayment returned no order");
    return reply.order;
  }

  /** The merchant's current view of an order. */
  async getOrder(orderId: string): Promise<Order> {
    const reply = await this.orders.getOrder({ orderId });
    if (!reply.order) throw new Error("GetOrder returned no order");
    return reply.order;
  }

  /** Polls `GetOrder` until the order reaches `status`; fails on a terminal state or after `timeoutMs`. */
  async waitForStatus(orderId: string, status: OrderStatus, timeoutMs = 30_000, intervalMs = 200): Promise<Order> {
    const until = Date.now() + timeoutMs;
    let last: Order | undefined;
    for (;;) {
      last = await this.getOrder(orderId);
      if (last.status === status) return last;
      if (TERMINAL.has(last.status)) {
        throw new OrderStatusError(`order ${orderId} is ${orderStatusName(last.status)} (${last.failureReason || "no reason"}), not ${orderStatusName(status)}`);
      }
      if (Date.now() >= until) break;
      await sleep(intervalMs);
    }
    throw new OrderStatusError(`order ${orderId} is still ${orderStatusName(last.status)} after ${timeoutMs} ms, not ${orderStatusName(status)}`);
  }

  /**
   * The one-time code of a challenge, read from the bank's device inbox
   * (`NotificationService.Subscribe` from sequence 0). The code is secret: do not print it.
   */
  async readOneTimeCode(challengeId: string, timeoutMs = 30_000): Promise<string> {
    const inbox = this.startInbox();
    const until = Date.now() + timeoutMs;
    for (;;) {
      const code = inbox.codes.get(challengeId);
      if (code !== undefined) return code;
      if (inbox.error) throw inbox.error;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`no one-time code for challenge ${challengeId} in the device inbox after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          inbox.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        inbox.waiters.add(wake);
      });
    }
  }

  /** Sends a challenge's one-time code straight to the customer's bank. */
  async answerChallenge(challengeId: string, code: string): Promise<AnswerChallengeResponse> {
    return this.challenges.answerChallenge({ requestId: randomUUID(), challengeId, code });
  }

  /** The balance of the customer's account. */
  async balance(): Promise<GetBalanceResponse> {
    return this.accounts.getBalance({ accountId: this.profile.account_id });
  }

  /** The customer's account statement since opening. */
  async statement(): Promise<ListStatementResponse> {
    return this.accounts.listStatement({ accountId: this.profile.account_id });
  }

  /** Stops following the inbox and closes both channels. */
  async close(): Promise<void> {
    if (this.inbox) {
      this.inbox.stopped = true;
      this.inbox.stream?.cancel();
      await this.inbox.done;
    }
    this.merchantChannel.close();
    this.bankChannel.close();
  }

  private startInbox(): Inbox {
    if (this.inbox) return this.inbox;
    const inbox: Inbox = { codes: new Map(), waiters: new Set(), cursor: 0n, stopped: false };
    this.inbox = inbox;
    const wakeAll = (): void => {
      for (const w of [...inbox.waiters]) w();
    };
    inbox.done = (async () => {
      let backoffMs = 100;
      while (!inbox.stopped) {
        const stream = this.bankNotifications.subscribe({ afterSequence: inbox.cursor });
        inbox.stream = stream;
        try {
          for await (const event of stream) {
            backoffMs = 100;
            inbox.cursor = event.sequence;
            if (event.event.case === "oneTimeCode") {
              inbox.codes.set(event.event.value.challengeId, event.event.value.code);
              wakeAll();
            }
          }
        } catch (err) {
          if (inbox.stopped && isCancelled(err)) break;
          if (hasStatus(err, grpcStatus.PERMISSION_DENIED) || hasStatus(err, grpcStatus.UNAUTHENTICATED)) {
            inbox.error = new Error(`the bank refused the device inbox: ${(err as Error).message}`);
            wakeAll();
            break;
          }
        }
        if (inbox.stopped) break;
        await sleep(backoffMs * (0.5 + Math.random()));
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    })();
    return inbox;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
