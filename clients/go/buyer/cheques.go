package buyer

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/paynet/paynet/clients/go/cheque"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
)

// Paying by electronic cheque (docs/cheque.md): the buyer's bank issues a
// cheque book whose account certificate binds the buyer's signing key, the
// buyer writes and signs each cheque offline with that key, and hands it with
// the certificate to the merchant (SubmitCheque), which endorses and deposits
// it. The drawee bank pays it or returns it with a reason.

// IssueChequeBook asks the buyer's bank for a cheque book of size serials on
// the profile's account. The book's next unwritten serial is kept by the
// Buyer (in memory) for WriteCheque.
func (b *Buyer) IssueChequeBook(ctx context.Context, size int32) (*interbankv1.ChequeBook, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Cheques.IssueChequeBook(ctx, &interbankv1.IssueChequeBookRequest{
		RequestId: NewRequestID(),
		AccountId: b.Profile.AccountID,
		BookSize:  size,
	})
	if err != nil {
		return nil, callError("IssueChequeBook", err)
	}
	book := resp.GetBook()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, known := b.nextSerial[bookKey(book)]; !known {
		b.nextSerial[bookKey(book)] = book.GetFirstSerial()
	}
	return book, nil
}

func bookKey(book *interbankv1.ChequeBook) string {
	return fmt.Sprintf("%s/%s/%d", book.GetBankCode(), hex.EncodeToString(book.GetAccountReference()), book.GetFirstSerial())
}

// TakeSerial returns the next serial of book not yet written and records it
// as written; an error when the book is used up or was not issued to this Buyer.
func (b *Buyer) TakeSerial(book *interbankv1.ChequeBook) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next, known := b.nextSerial[bookKey(book)]
	if !known {
		return 0, fmt.Errorf("cheque book %d-%d on %s was not issued to this buyer", book.GetFirstSerial(), book.GetLastSerial(), book.GetBankCode())
	}
	if next > book.GetLastSerial() {
		return 0, fmt.Errorf("cheque book %d-%d on %s is used up", book.GetFirstSerial(), book.GetLastSerial(), book.GetBankCode())
	}
	b.nextSerial[bookKey(book)] = next + 1
	return next, nil
}

// Today is the current UTC calendar date, the date a cheque is written on.
func Today() cheque.Date {
	now := time.Now().UTC()
	return cheque.Date{Year: now.Year(), Month: now.Month(), Day: now.Day()}
}

// WriteCheque signs, with the buyer's key, a cheque from book paying order:
// payee, amount, currency and order reference are the order's. It returns the
// signed bytes (encoding || Ed25519 signature) that travel.
func (b *Buyer) WriteCheque(order *interbankv1.Order, book *interbankv1.ChequeBook, serial int64, date cheque.Date, memo string) ([]byte, error) {
	return cheque.Sign(b.signingKey, cheque.Cheque{
		DraweeBankCode:   book.GetBankCode(),
		AccountReference: book.GetAccountReference(),
		Serial:           serial,
		Payee:            order.GetMerchantName(),
		AmountMinor:      order.GetTotal().GetAmountMinor(),
		CurrencyCode:     order.GetTotal().GetCurrencyCode(),
		Date:             date,
		OrderReference:   order.GetOrderId(),
		Memo:             memo,
	})
}

// SubmitCheque hands a signed cheque and its book's certificate to the
// merchant for orderID. The order comes back PAYMENT_PENDING while the cheque
// clears (or SETTLED or FAILED already for a cheque on the merchant's own bank).
func (b *Buyer) SubmitCheque(ctx context.Context, orderID string, signedCheque, signedCertificate []byte) (*interbankv1.Order, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.SubmitCheque(ctx, &interbankv1.SubmitChequeRequest{
		RequestId:         NewRequestID(),
		OrderId:           orderID,
		SignedCheque:      signedCheque,
		SignedCertificate: signedCertificate,
	})
	if err != nil {
		return nil, callError("SubmitCheque", err)
	}
	return resp.GetOrder(), nil
}

// StopCheque records a stop-payment order on serial of book at the buyer's
// bank: the cheque is returned PAYMENT_STOPPED if presented.
func (b *Buyer) StopCheque(ctx context.Context, book *interbankv1.ChequeBook, serial int64) (*interbankv1.StopChequeResponse, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Cheques.StopCheque(ctx, &interbankv1.StopChequeRequest{
		RequestId:        NewRequestID(),
		AccountReference: book.GetAccountReference(),
		Serial:           serial,
	})
	if err != nil {
		return nil, callError("StopCheque", err)
	}
	return resp, nil
}

// ChequePurchase is a purchase paid by cheque.
type ChequePurchase struct {
	// Order is the order in DELIVERY_CONFIRMED.
	Order *interbankv1.Order
	// Submitted is the order's status as SubmitCheque answered.
	Submitted interbankv1.OrderStatus
	// Serial is the cheque's serial.
	Serial int64
}

// BuyByCheque orders quantity units of sku, pays with the next cheque of book
// dated today, and waits until the merchant confirms delivery (an error if
// the cheque is returned: the order then ends FAILED with the return reason).
func (b *Buyer) BuyByCheque(ctx context.Context, sku string, quantity int32, book *interbankv1.ChequeBook, memo string) (*ChequePurchase, error) {
	created, err := b.CreateOrder(ctx, sku, quantity)
	if err != nil {
		return nil, err
	}
	order := created.GetOrder()
	serial, err := b.TakeSerial(book)
	if err != nil {
		return nil, err
	}
	signed, err := b.WriteCheque(order, book, serial, Today(), memo)
	if err != nil {
		return nil, err
	}
	submitted, err := b.SubmitCheque(ctx, order.GetOrderId(), signed, book.GetSignedCertificate())
	if err != nil {
		return nil, err
	}
	purchase := &ChequePurchase{Submitted: submitted.GetStatus(), Serial: serial}
	if submitted.GetStatus() == interbankv1.OrderStatus_ORDER_STATUS_FAILED {
		return purchase, fmt.Errorf("order %s: cheque %d returned: %s", order.GetOrderId(), serial, submitted.GetFailureReason())
	}
	purchase.Order, err = b.WaitForStatus(ctx, order.GetOrderId(), interbankv1.OrderStatus_ORDER_STATUS_DELIVERY_CONFIRMED)
	return purchase, err
}
