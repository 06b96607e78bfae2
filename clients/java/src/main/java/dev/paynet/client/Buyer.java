package dev.paynet.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import interbank.v1.Account.GetBalanceRequest;
import interbank.v1.Account.GetBalanceResponse;
import interbank.v1.Account.ListStatementRequest;
import interbank.v1.Account.ListStatementResponse;
import interbank.v1.AccountServiceGrpc;
import interbank.v1.Authorization.AnswerChallengeRequest;
import interbank.v1.Authorization.HoldStatus;
import interbank.v1.ChallengeServiceGrpc;
import interbank.v1.Common.PaymentInstruction;
import interbank.v1.Common.SealedPayment;
import interbank.v1.Notification.SubscribeRequest;
import interbank.v1.Notification.SubscribeResponse;
import interbank.v1.NotificationServiceGrpc;
import interbank.v1.OrderOuterClass.CompletePaymentRequest;
import interbank.v1.OrderOuterClass.CreateOrderLine;
import interbank.v1.OrderOuterClass.CreateOrderRequest;
import interbank.v1.OrderOuterClass.CreateOrderResponse;
import interbank.v1.OrderOuterClass.GetOrderRequest;
import interbank.v1.OrderOuterClass.ListProductsRequest;
import interbank.v1.OrderOuterClass.Order;
import interbank.v1.OrderOuterClass.OrderStatus;
import interbank.v1.OrderOuterClass.Product;
import interbank.v1.OrderOuterClass.SubmitPaymentRequest;
import interbank.v1.OrderServiceGrpc;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * A customer buying at a paynet merchant: creates orders, checks their digest,
 * seals and dual-signs the payment instruction, answers step-up challenges
 * from the device inbox, and waits for delivery.
 *
 * <p>Every call carries a deadline and every mutating call a fresh UUID
 * {@code request_id}. The one-time code and instrument numbers never leave
 * this class other than to the bank and (sealed) to the gateway.
 */
public final class Buyer implements AutoCloseable {
    /** Deadline of every unary call. */
    public static final Duration CALL_DEADLINE = Duration.ofSeconds(10);
    /** How long to wait for an order to reach DELIVERY_CONFIRMED. */
    public static final Duration DELIVERY_TIMEOUT = Duration.ofSeconds(30);
    /** How long to wait for the one-time code in the device inbox. */
    public static final Duration CODE_TIMEOUT = Duration.ofSeconds(30);
    /** Bytes of random nonce in every instruction. */
    public static final int NONCE_LENGTH = 16;

    private static final Set<OrderStatus> FINAL_FAILURES = Set.of(OrderStatus.ORDER_STATUS_FAILED,
            OrderStatus.ORDER_STATUS_CANCELED, OrderStatus.ORDER_STATUS_REVERSED, OrderStatus.ORDER_STATUS_REFUNDED);

    private final Profile profile;
    private final PrivateKey signingKey;
    private final ManagedChannel merchantChannel;
    private final ManagedChannel bankChannel;
    private final SecureRandom random = new SecureRandom();

    private Buyer(Profile profile, PrivateKey signingKey, ManagedChannel merchantChannel, ManagedChannel bankChannel) {
        this.profile = profile;
        this.signingKey = signingKey;
        this.merchantChannel = merchantChannel;
        this.bankChannel = bankChannel;
    }

    /**
     * Opens mutual-TLS channels to the profile's merchant and bank.
     *
     * @param profile the customer's profile
     * @return the buyer; close it to shut the channels down
     * @throws IOException if a certificate or key cannot be read
     */
    public static Buyer connect(Profile profile) throws IOException {
        PrivateKey signingKey = profile.loadSigningKey();
        ManagedChannel merchant = Channels.open(profile, profile.merchant().address());
        try {
            return new Buyer(profile, signingKey, merchant, Channels.open(profile, profile.bank().address()));
        } catch (IOException | RuntimeException e) {
            Channels.close(merchant);
            throw e;
        }
    }

    /**
     * The profile this buyer pays as.
     *
     * @return the profile
     */
    public Profile profile() {
        return profile;
    }

    /**
     * The customer's account balance ({@code AccountService.GetBalance}).
     *
     * @return booked, available and held
     */
    public GetBalanceResponse balance() {
        return call("GetBalance", () -> AccountServiceGrpc.newBlockingStub(bankChannel)
                .withDeadlineAfter(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
                .getBalance(GetBalanceRequest.newBuilder().setAccountId(profile.accountId()).build()));
    }

    /**
     * The customer's whole statement ({@code AccountService.ListStatement}).
     *
     * @return every booked entry since the account opened
     */
    public ListStatementResponse statement() {
        return call("ListStatement", () -> AccountServiceGrpc.newBlockingStub(bankChannel)
                .withDeadlineAfter(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
                .listStatement(ListStatementRequest.newBuilder().setAccountId(profile.accountId()).build()));
    }

    /**
     * The merchant's catalog ({@code OrderService.ListProducts}).
     *
     * @return every product on sale
     */
    public List<Product> listProducts() {
        return call("ListProducts", () -> merchant().listProducts(ListProductsRequest.getDefaultInstance()))
                .getProductsList();
    }

    /**
     * Creates an order of one product and checks its digest.
     *
     * @param sku the product
     * @param quantity units wanted
     * @return the order and the gateway key to seal to
     * @throws PaynetException with reason ORDER_DIGEST_MISMATCH if the merchant's digest does not recompute
     */
    public CreateOrderResponse createOrder(String sku, int quantity) {
        CreateOrderRequest request = CreateOrderRequest.newBuilder()
                .setRequestId(newRequestId())
                .addLines(CreateOrderLine.newBuilder().setSku(sku).setQuantity(quantity))
                .build();
        CreateOrderResponse created = call("CreateOrder", () -> merchant().createOrder(request));
        if (!Envelope.orderDigestMatches(created.getOrder())) {
            throw new PaynetException("ORDER_DIGEST_MISMATCH",
                    "order " + created.getOrder().getOrderId() + " has a digest that does not match its fields; refusing to pay");
        }
        return created;
    }

    /**
     * The instruction paying an order with an instrument: amount = order total,
     * a fresh random nonce, created now.
     *
     * @param order the order (digest already checked)
     * @param instrument the instrument to debit
     * @return the instruction (secret: holds the instrument number)
     */
    public PaymentInstruction buildInstruction(Order order, Profile.Instrument instrument) {
        byte[] nonce = new byte[NONCE_LENGTH];
        random.nextBytes(nonce);
        Instant now = Instant.now();
        return PaymentInstruction.newBuilder()
                .setInstrument(instrument.toProto())
                .setAmount(order.getTotal())
                .setOrderDigest(order.getOrderDigest())
                .setOrderId(order.getOrderId())
                .setMerchantName(order.getMerchantName())
                .setCustomerName(order.getCustomerName())
                .setNonce(ByteString.copyFrom(nonce))
                .setCreatedAt(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
                .build();
    }

    /**
     * Seals, signs and submits the payment of a created order ({@code OrderService.SubmitPayment}).
     *
     * @param created the CreateOrder answer
     * @param instrument the instrument to debit
     * @return the order after authorization (CAPTURED or later when frictionless, CHALLENGE_REQUIRED when challenged)
     */
    public Order submitPayment(CreateOrderResponse created, Profile.Instrument instrument) {
        Order order = created.getOrder();
        Envelope.Sealed sealed = Envelope.sealAndSign(buildInstruction(order, instrument),
                created.getGatewayPublicKey().toByteArray(), signingKey);
        SubmitPaymentRequest request = SubmitPaymentRequest.newBuilder()
                .setRequestId(newRequestId())
                .setOrderId(order.getOrderId())
                .setPayment(SealedPayment.newBuilder()
                        .setSealedInstruction(ByteString.copyFrom(sealed.sealedInstruction()))
                        .setDualSignature(ByteString.copyFrom(sealed.dualSignature()))
                        .setGatewayKeyId(created.getGatewayKeyId()))
                .build();
        return call("SubmitPayment", () -> merchant().submitPayment(request)).getOrder();
    }

    /**
     * Reads the one-time code of a challenge from the bank's device inbox
     * ({@code NotificationService.Subscribe}, from sequence 0) and answers it
     * ({@code ChallengeService.AnswerChallenge}). The code itself is never returned.
     *
     * @param challengeId the challenge from the order
     * @return the hold's status after the answer (AUTHORIZED)
     */
    public HoldStatus answerChallengeFromInbox(String challengeId) {
        String code = awaitOneTimeCode(challengeId);
        AnswerChallengeRequest request = AnswerChallengeRequest.newBuilder()
                .setRequestId(newRequestId())
                .setChallengeId(challengeId)
                .setCode(code)
                .build();
        return call("AnswerChallenge", () -> ChallengeServiceGrpc.newBlockingStub(bankChannel)
                .withDeadlineAfter(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
                .answerChallenge(request)).getHoldStatus();
    }

    private String awaitOneTimeCode(String challengeId) {
        Context.CancellableContext context = Context.current().withCancellation();
        try {
            return context.call(() -> {
                Iterator<SubscribeResponse> events = NotificationServiceGrpc.newBlockingStub(bankChannel)
                        .withDeadlineAfter(CODE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                        .subscribe(SubscribeRequest.newBuilder().setAfterSequence(0).build());
                while (events.hasNext()) {
                    SubscribeResponse event = events.next();
                    if (event.hasOneTimeCode() && event.getOneTimeCode().getChallengeId().equals(challengeId)) {
                        return event.getOneTimeCode().getCode();
                    }
                }
                throw new PaynetException("ONE_TIME_CODE_MISSING",
                        "the device inbox ended without a code for challenge " + challengeId);
            });
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED) {
                throw new PaynetException("ONE_TIME_CODE_MISSING",
                        "no code for challenge " + challengeId + " in the device inbox within " + CODE_TIMEOUT.toSeconds() + " s");
            }
            throw PaynetException.fromGrpc("Subscribe", e);
        } catch (PaynetException e) {
            throw e;
        } catch (Exception e) {
            throw new PaynetException("ONE_TIME_CODE_MISSING", "reading the device inbox failed: " + e);
        } finally {
            context.cancel(null);
        }
    }

    /**
     * Captures an order's authorized payment after its challenge was answered
     * ({@code OrderService.CompletePayment}).
     *
     * @param orderId the order
     * @return the order, CAPTURED or later
     */
    public Order completePayment(String orderId) {
        CompletePaymentRequest request = CompletePaymentRequest.newBuilder()
                .setRequestId(newRequestId())
                .setOrderId(orderId)
                .build();
        return call("CompletePayment", () -> merchant().completePayment(request)).getOrder();
    }

    /**
     * One of the customer's orders ({@code OrderService.GetOrder}).
     *
     * @param orderId the order
     * @return the order as the merchant knows it now
     */
    public Order getOrder(String orderId) {
        return call("GetOrder", () -> merchant().getOrder(GetOrderRequest.newBuilder().setOrderId(orderId).build()))
                .getOrder();
    }

    /**
     * Polls an order until it reaches a status.
     *
     * @param orderId the order
     * @param wanted the status to wait for
     * @param timeout how long at most
     * @return the order in that status
     * @throws PaynetException if the order fails or the time runs out
     */
    public Order awaitStatus(String orderId, OrderStatus wanted, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Order order = getOrder(orderId);
        while (order.getStatus() != wanted) {
            if (FINAL_FAILURES.contains(order.getStatus())) {
                throw new PaynetException("ORDER_" + order.getStatus().name().replace("ORDER_STATUS_", ""),
                        "order " + orderId + " ended " + order.getStatus()
                                + (order.getFailureReason().isEmpty() ? "" : " (" + order.getFailureReason() + ")"));
            }
            if (System.nanoTime() > deadline) {
                throw new PaynetException("ORDER_TIMEOUT", "order " + orderId + " is still " + order.getStatus()
                        + " after " + timeout.toSeconds() + " s, wanted " + wanted);
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PaynetException("INTERRUPTED", "interrupted while waiting for order " + orderId);
            }
            order = getOrder(orderId);
        }
        return order;
    }

    /**
     * A whole purchase: creates the order, pays it with the instrument,
     * answers a challenge if the issuer asks for one, completes the payment
     * and waits until delivery is confirmed.
     *
     * @param sku the product
     * @param quantity units wanted
     * @param instrument the instrument to debit
     * @return what happened
     * @throws PaynetException if any step fails
     */
    public Purchase buy(String sku, int quantity, Profile.Instrument instrument) {
        CreateOrderResponse created = createOrder(sku, quantity);
        String orderId = created.getOrder().getOrderId();
        Order submitted = submitPayment(created, instrument);
        if (submitted.getStatus() == OrderStatus.ORDER_STATUS_FAILED) {
            throw new PaynetException(submitted.getFailureReason().isEmpty() ? "PAYMENT_FAILED" : submitted.getFailureReason(),
                    "payment of order " + orderId + " failed");
        }
        String challengeId = "";
        HoldStatus holdStatus = HoldStatus.HOLD_STATUS_UNSPECIFIED;
        if (submitted.getStatus() == OrderStatus.ORDER_STATUS_CHALLENGE_REQUIRED) {
            challengeId = submitted.getChallenge().getChallengeId();
            if (challengeId.isEmpty()) {
                throw new PaynetException("CHALLENGE_MISSING", "order " + orderId + " is CHALLENGE_REQUIRED without a challenge id");
            }
            holdStatus = answerChallengeFromInbox(challengeId);
            completePayment(orderId);
        }
        Order delivered = awaitStatus(orderId, OrderStatus.ORDER_STATUS_DELIVERY_CONFIRMED, DELIVERY_TIMEOUT);
        return new Purchase(orderId, created.getOrder().getTotal().getAmountMinor(), submitted.getStatus(),
                challengeId, holdStatus, delivered);
    }

    /**
     * The outcome of {@link #buy}.
     *
     * @param orderId the order
     * @param totalMinor what was paid, in minor units
     * @param submitStatus the order's status right after SubmitPayment
     * @param challengeId the challenge answered, or "" if frictionless
     * @param holdStatus the hold's status after the challenge answer, or UNSPECIFIED if frictionless
     * @param order the order at the end (DELIVERY_CONFIRMED)
     */
    public record Purchase(String orderId, long totalMinor, OrderStatus submitStatus, String challengeId,
            HoldStatus holdStatus, Order order) {
        /**
         * Whether the issuer challenged the payment.
         *
         * @return true if a challenge was answered
         */
        public boolean challenged() {
            return !challengeId.isEmpty();
        }
    }

    @Override
    public void close() {
        Channels.close(merchantChannel);
        Channels.close(bankChannel);
    }

    private OrderServiceGrpc.OrderServiceBlockingStub merchant() {
        return OrderServiceGrpc.newBlockingStub(merchantChannel)
                .withDeadlineAfter(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
    }

    private static String newRequestId() {
        return UUID.randomUUID().toString();
    }

    private static <T> T call(String name, Supplier<T> rpc) {
        try {
            return rpc.get();
        } catch (StatusRuntimeException e) {
            throw PaynetException.fromGrpc(name, e);
        }
    }
}
