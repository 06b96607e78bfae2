/**
 * The buyer (clients/README.md, section 1): a frictionless card purchase and a
 * challenged bank-account purchase against a running network, checked on the
 * customer's account. Needs PAYNET_PROFILE.
 */
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { AccountEntryDirection } from "../gen/interbank/v1/notification_pb.js";
import { HoldStatus } from "../gen/interbank/v1/authorization_pb.js";
import { OrderStatus } from "../gen/interbank/v1/order_pb.js";
import { Buyer, orderStatusName, type InstrumentChoice } from "../buyer.js";

const BOOK = { sku: "book-001", price: 4_500n };
const BIKE = { sku: "bike-003", price: 72_000n };
const profilePath = process.env.PAYNET_PROFILE;
let buyer: Buyer | undefined;

before(() => {
  if (profilePath) buyer = Buyer.fromProfileFile(profilePath);
});

after(async () => {
  await buyer?.close();
});

/** Places an order for one unit of `sku` and pays it; returns the order after SubmitPayment. */
async function placeAndPay(b: Buyer, sku: string, price: bigint, instrument: InstrumentChoice) {
  const placed = await b.createOrder([{ sku, quantity: 1 }]); // digest checked inside
  assert.equal(placed.order.total?.amountMinor, price, `${sku} total`);
  assert.equal(placed.order.total?.currencyCode, b.profile.currency);
  assert.equal(placed.gatewayPublicKey.length, 32);
  const submitted = await b.pay(placed, instrument);
  return { orderId: placed.order.orderId, submitted };
}

it("buyer: frictionless and challenged purchases", async () => {
  if (!buyer) {
    assert.fail(
      "PAYNET_PROFILE is not set: start a network with `.venv/bin/python -m ops.clientnet --dir DIR` in the repository root " +
        "(it prints PAYNET_PROFILE=... for each language), then run `PAYNET_PROFILE=DIR/profiles/typescript.json npm test`",
    );
  }
  const b = buyer;
  const before = await b.balance();
  const bookedBefore = before.booked?.amountMinor ?? 0n;

  const skus = (await b.listProducts()).map((p) => p.sku);
  assert.ok(skus.includes(BOOK.sku) && skus.includes(BIKE.sku), `catalog lacks ${BOOK.sku} or ${BIKE.sku}: ${skus.join(", ")}`);

  // Frictionless: card, below the challenge threshold.
  const book = await placeAndPay(b, BOOK.sku, BOOK.price, "card");
  assert.ok(
    book.submitted.status !== OrderStatus.CHALLENGE_REQUIRED && book.submitted.status !== OrderStatus.FAILED,
    `frictionless SubmitPayment answered ${orderStatusName(book.submitted.status)} ${book.submitted.failureReason}`,
  );
  const bookDone = await b.waitForStatus(book.orderId, OrderStatus.DELIVERY_CONFIRMED);

  // Challenged: bank account, above the 50,000 threshold.
  const bike = await placeAndPay(b, BIKE.sku, BIKE.price, "account");
  assert.equal(bike.submitted.status, OrderStatus.CHALLENGE_REQUIRED, `challenged SubmitPayment answered ${orderStatusName(bike.submitted.status)}`);
  const challengeId = bike.submitted.challenge?.challengeId;
  assert.ok(challengeId, "CHALLENGE_REQUIRED without challenge.challenge_id");
  const code = await b.readOneTimeCode(challengeId);
  const answer = await b.answerChallenge(challengeId, code);
  assert.equal(answer.holdStatus, HoldStatus.AUTHORIZED, `AnswerChallenge gave hold status ${HoldStatus[answer.holdStatus]}`);
  await b.completePayment(bike.orderId);
  const bikeDone = await b.waitForStatus(bike.orderId, OrderStatus.DELIVERY_CONFIRMED);

  // The account: booked down by both, nothing held, both debits on the statement.
  const afterBalance = await b.balance();
  const bookedAfter = afterBalance.booked?.amountMinor ?? 0n;
  assert.equal(bookedAfter, bookedBefore - BOOK.price - BIKE.price, "booked balance");
  assert.equal(afterBalance.held?.amountMinor ?? 0n, 0n, "held");
  const debits = (await b.statement()).entries.filter((e) => e.direction === AccountEntryDirection.DEBIT);
  for (const [orderId, amount] of [
    [book.orderId, BOOK.price],
    [bike.orderId, BIKE.price],
  ] as const) {
    const matching = debits.filter((e) => e.orderId === orderId && e.amount?.amountMinor === amount);
    assert.equal(matching.length, 1, `statement debits of ${amount} for order ${orderId}`);
  }

  console.log(
    `paynet typescript buyer: frictionless ${bookDone.orderId} ${orderStatusName(bookDone.status)} ${BOOK.price}; ` +
      `challenged ${bikeDone.orderId} ${orderStatusName(bikeDone.status)} ${BIKE.price}; booked ${bookedBefore} -> ${bookedAfter}`,
  );
});
