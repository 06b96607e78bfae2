package buyer_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/paynet/paynet/clients/go/buyer"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"github.com/paynet/paynet/clients/go/profile"
)

const (
	book      = "book-001"
	bike      = "bike-003"
	lamp      = "lamp-002"
	bookPrice = 4500
	bikePrice = 72000
	lampPrice = 3250
)

// TestBuyer is the buyer of clients/README.md: a frictionless purchase with
// the card, a challenged one with the bank account, one paid by electronic
// cheque from a cheque book the bank issues, and the balance and statement
// afterwards. It needs a running network: PAYNET_PROFILE names the
// go buyer's profile.
func TestBuyer(t *testing.T) {
	if os.Getenv(profile.EnvVar) == "" {
		t.Fatal("PAYNET_PROFILE is not set: start a network with " +
			"`.venv/bin/python -m ops.clientnet --dir DIR` in the repository root, " +
			"then run PAYNET_PROFILE=DIR/profiles/go.json go test ./...")
	}
	p, err := profile.LoadFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buyer.New(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	before, err := b.Balance(ctx)
	if err != nil {
		t.Fatal(err)
	}

	products, err := b.ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prices := map[string]int64{}
	for _, product := range products {
		prices[product.GetSku()] = product.GetUnitPrice().GetAmountMinor()
	}
	for sku, price := range map[string]int64{book: bookPrice, bike: bikePrice, lamp: lampPrice} {
		if got, ok := prices[sku]; !ok || got != price {
			t.Fatalf("catalog: %s costs %d (listed: %v), want %d", sku, got, ok, price)
		}
	}

	frictionless, err := b.Buy(ctx, book, 1, "card")
	if err != nil {
		t.Fatalf("frictionless purchase: %v", err)
	}
	if frictionless.Challenged || frictionless.Submitted == interbankv1.OrderStatus_ORDER_STATUS_FAILED {
		t.Fatalf("frictionless purchase: SubmitPayment answered %s", frictionless.Submitted)
	}
	checkOrder(t, frictionless.Order, p.Customer, bookPrice)

	challenged, err := b.Buy(ctx, bike, 1, "account")
	if err != nil {
		t.Fatalf("challenged purchase: %v", err)
	}
	if !challenged.Challenged {
		t.Fatalf("challenged purchase: SubmitPayment answered %s, want ORDER_STATUS_CHALLENGE_REQUIRED", challenged.Submitted)
	}
	checkOrder(t, challenged.Order, p.Customer, bikePrice)

	chequeBook, err := b.IssueChequeBook(ctx, 5)
	if err != nil {
		t.Fatalf("cheque book: %v", err)
	}
	if size := chequeBook.GetLastSerial() - chequeBook.GetFirstSerial() + 1; size != 5 || chequeBook.GetBankCode() != p.Bank.BankCode {
		t.Fatalf("cheque book: %d serials on %q, want 5 on %q", size, chequeBook.GetBankCode(), p.Bank.BankCode)
	}
	byCheque, err := b.BuyByCheque(ctx, lamp, 1, chequeBook, "desk lamp")
	if err != nil {
		t.Fatalf("cheque purchase: %v", err)
	}
	if byCheque.Serial != chequeBook.GetFirstSerial() {
		t.Fatalf("cheque purchase: serial %d, want the book's first, %d", byCheque.Serial, chequeBook.GetFirstSerial())
	}
	checkOrder(t, byCheque.Order, p.Customer, lampPrice)

	after, err := b.Balance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantBooked := before.GetBooked().GetAmountMinor() - bookPrice - bikePrice - lampPrice
	if got := after.GetBooked().GetAmountMinor(); got != wantBooked {
		t.Errorf("booked after: %d, want %d", got, wantBooked)
	}
	if held := after.GetHeld().GetAmountMinor(); held != 0 {
		t.Errorf("held after: %d, want 0", held)
	}

	statement, err := b.Statement(ctx)
	if err != nil {
		t.Fatal(err)
	}
	debits := map[string][]int64{}
	for _, entry := range statement.GetEntries() {
		if entry.GetDirection() == interbankv1.AccountEntryDirection_ACCOUNT_ENTRY_DIRECTION_DEBIT {
			debits[entry.GetOrderId()] = append(debits[entry.GetOrderId()], entry.GetAmount().GetAmountMinor())
		}
	}
	for _, want := range []struct {
		orderID string
		amount  int64
	}{
		{frictionless.Order.GetOrderId(), bookPrice},
		{challenged.Order.GetOrderId(), bikePrice},
		{byCheque.Order.GetOrderId(), lampPrice},
	} {
		if got := debits[want.orderID]; len(got) != 1 || got[0] != want.amount {
			t.Errorf("statement debits for order %s: %v, want one of %d", want.orderID, got, want.amount)
		}
	}
	if t.Failed() {
		return
	}

	t.Logf("paynet go buyer: frictionless %s DELIVERY_CONFIRMED %d; challenged %s DELIVERY_CONFIRMED %d; cheque %s DELIVERY_CONFIRMED %d; booked %d -> %d",
		frictionless.Order.GetOrderId(), frictionless.Order.GetTotal().GetAmountMinor(),
		challenged.Order.GetOrderId(), challenged.Order.GetTotal().GetAmountMinor(),
		byCheque.Order.GetOrderId(), byCheque.Order.GetTotal().GetAmountMinor(),
		before.GetBooked().GetAmountMinor(), after.GetBooked().GetAmountMinor())
}

// checkOrder checks a purchased order: delivered, for the profile's customer,
// at the expected total.
func checkOrder(t *testing.T, order *interbankv1.Order, customer string, total int64) {
	t.Helper()
	if order.GetCustomerName() != customer {
		t.Fatalf("order %s is for %q, want %q", order.GetOrderId(), order.GetCustomerName(), customer)
	}
	if order.GetStatus() != interbankv1.OrderStatus_ORDER_STATUS_DELIVERY_CONFIRMED {
		t.Fatalf("order %s is %s, want ORDER_STATUS_DELIVERY_CONFIRMED", order.GetOrderId(), order.GetStatus())
	}
	if got := order.GetTotal().GetAmountMinor(); got != total {
		t.Fatalf("order %s total %d, want %d", order.GetOrderId(), got, total)
	}
}
