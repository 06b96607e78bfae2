package dev.paynet.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import interbank.v1.Account.GetBalanceResponse;
import interbank.v1.Account.StatementEntry;
import interbank.v1.Authorization.HoldStatus;
import interbank.v1.Notification.AccountEntryDirection;
import interbank.v1.OrderOuterClass.OrderStatus;
import interbank.v1.OrderOuterClass.Product;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The buyer of clients/README.md against a running network named by
 * {@code PAYNET_PROFILE}: a frictionless card purchase and a challenged
 * bank-account purchase, then the balance and statement checks.
 */
class BuyerTest {
    private static final long BOOK_MINOR = 4_500;
    private static final long BIKE_MINOR = 72_000;

    @Test
    void buysFrictionlessAndChallenged() throws Exception {
        String path = System.getenv(Profile.ENV);
        if (path == null || path.isBlank()) {
            fail(Profile.howToStartNetwork());
        }
        Profile profile = Profile.fromEnvironment();

        try (Buyer buyer = Buyer.connect(profile)) {
            GetBalanceResponse before = buyer.balance();

            Set<String> skus = buyer.listProducts().stream().map(Product::getSku).collect(Collectors.toSet());
            assertTrue(skus.containsAll(Set.of("book-001", "bike-003")), "catalog lacks book-001 or bike-003: " + skus);

            Buyer.Purchase frictionless = buyer.buy("book-001", 1, profile.card());
            assertEquals(BOOK_MINOR, frictionless.totalMinor());
            assertNotEquals(OrderStatus.ORDER_STATUS_CHALLENGE_REQUIRED, frictionless.submitStatus());
            assertNotEquals(OrderStatus.ORDER_STATUS_FAILED, frictionless.submitStatus());
            assertFalse(frictionless.challenged());
            assertEquals(OrderStatus.ORDER_STATUS_DELIVERY_CONFIRMED, frictionless.order().getStatus());

            Buyer.Purchase challenged = buyer.buy("bike-003", 1, profile.account());
            assertEquals(BIKE_MINOR, challenged.totalMinor());
            assertEquals(OrderStatus.ORDER_STATUS_CHALLENGE_REQUIRED, challenged.submitStatus());
            assertTrue(challenged.challenged());
            assertEquals(HoldStatus.HOLD_STATUS_AUTHORIZED, challenged.holdStatus());
            assertEquals(OrderStatus.ORDER_STATUS_DELIVERY_CONFIRMED, challenged.order().getStatus());

            GetBalanceResponse after = buyer.balance();
            long bookedBefore = before.getBooked().getAmountMinor();
            long bookedAfter = after.getBooked().getAmountMinor();
            assertEquals(bookedBefore - BOOK_MINOR - BIKE_MINOR, bookedAfter, "booked balance after both purchases");
            assertEquals(0, after.getHeld().getAmountMinor(), "held after both purchases");

            List<StatementEntry> entries = buyer.statement().getEntriesList();
            assertDebitedOnce(entries, frictionless.orderId(), BOOK_MINOR);
            assertDebitedOnce(entries, challenged.orderId(), BIKE_MINOR);

            System.out.println("paynet java buyer: frictionless " + frictionless.orderId() + " "
                    + shortStatus(frictionless.order().getStatus()) + " " + frictionless.totalMinor()
                    + "; challenged " + challenged.orderId() + " " + shortStatus(challenged.order().getStatus())
                    + " " + challenged.totalMinor() + "; booked " + bookedBefore + " -> " + bookedAfter);
        }
    }

    private static void assertDebitedOnce(List<StatementEntry> entries, String orderId, long amountMinor) {
        List<StatementEntry> debits = entries.stream()
                .filter(e -> e.getOrderId().equals(orderId))
                .filter(e -> e.getDirection() == AccountEntryDirection.ACCOUNT_ENTRY_DIRECTION_DEBIT)
                .toList();
        assertEquals(1, debits.size(), "debits for order " + orderId);
        assertEquals(amountMinor, debits.get(0).getAmount().getAmountMinor(), "debit for order " + orderId);
    }

    private static String shortStatus(OrderStatus status) {
        return status.name().substring("ORDER_STATUS_".length());
    }
}
