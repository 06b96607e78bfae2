// Package buyer is a paynet customer's client: it buys from the merchant over
// mutual TLS, pays with a sealed, dual-signed instruction and answers step-up
// challenges with the one-time code from its bank's device inbox, or pays
// with an electronic cheque from a cheque book its bank issued (cheques.go).
//
// Every mutating call carries a fresh UUID request_id and every call a
// deadline. Nothing here prints or puts into an error the one-time code, an
// instrument number or a key.
package buyer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/paynet/paynet/clients/go/envelope"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"github.com/paynet/paynet/clients/go/profile"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults for the Buyer's timing.
const (
	// DefaultCallTimeout is the deadline of each unary call.
	DefaultCallTimeout = 30 * time.Second
	// DefaultWaitTimeout bounds WaitForStatus and ReadOneTimeCode.
	DefaultWaitTimeout = 30 * time.Second
	// DefaultPollInterval is how often WaitForStatus asks for the order.
	DefaultPollInterval = 200 * time.Millisecond
)

// Buyer is a customer's client built from a profile. Close it when done.
type Buyer struct {
	// Profile is the customer's profile.
	Profile *profile.Profile
	// Orders is the merchant's storefront.
	Orders interbankv1.OrderServiceClient
	// Accounts is the bank's online banking.
	Accounts interbankv1.AccountServiceClient
	// Notifications is the bank's notification stream (the device inbox).
	Notifications interbankv1.NotificationServiceClient
	// Challenges is the bank's step-up endpoint.
	Challenges interbankv1.ChallengeServiceClient
	// Cheques is the bank's cheque desk (cheque books, stop-payment orders).
	Cheques interbankv1.ChequeServiceClient

	// CallTimeout is the deadline of each unary call.
	CallTimeout time.Duration
	// WaitTimeout bounds WaitForStatus and ReadOneTimeCode.
	WaitTimeout time.Duration
	// PollInterval is how often WaitForStatus polls GetOrder.
	PollInterval time.Duration

	signingKey ed25519.PrivateKey
	conns      []*grpc.ClientConn

	mu         sync.Mutex
	nextSerial map[string]int64 // per cheque book: its next unwritten serial
}

// New opens mutual-TLS connections to the profile's merchant and bank and
// loads the customer's signing key.
func New(p *profile.Profile) (*Buyer, error) {
	signingKey, err := p.LoadSigningKey()
	if err != nil {
		return nil, err
	}
	merchant, err := p.Dial(p.Merchant.Address)
	if err != nil {
		return nil, fmt.Errorf("merchant %s: %w", p.Merchant.Name, err)
	}
	bank, err := p.Dial(p.Bank.Address)
	if err != nil {
		merchant.Close()
		return nil, fmt.Errorf("bank %s: %w", p.Bank.Name, err)
	}
	return &Buyer{
		Profile:       p,
		Orders:        interbankv1.NewOrderServiceClient(merchant),
		Accounts:      interbankv1.NewAccountServiceClient(bank),
		Notifications: interbankv1.NewNotificationServiceClient(bank),
		Challenges:    interbankv1.NewChallengeServiceClient(bank),
		Cheques:       interbankv1.NewChequeServiceClient(bank),
		CallTimeout:   DefaultCallTimeout,
		WaitTimeout:   DefaultWaitTimeout,
		PollInterval:  DefaultPollInterval,
		signingKey:    signingKey,
		conns:         []*grpc.ClientConn{merchant, bank},
		nextSerial:    map[string]int64{},
	}, nil
}

// Close closes the connections.
func (b *Buyer) Close() error {
	var errs []error
	for _, conn := range b.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// NewRequestID returns a fresh random (version 4) UUID for a request_id.
func NewRequestID() string {
	var u [16]byte
	rand.Read(u[:]) // never fails (crypto/rand, Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Reason returns the ErrorInfo reason of a paynet gRPC error ("" if none).
func Reason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return ""
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// callError names the failed call and the error's paynet reason.
func callError(call string, err error) error {
	if reason := Reason(err); reason != "" {
		return fmt.Errorf("%s: %s: %w", call, reason, err)
	}
	return fmt.Errorf("%s: %w", call, err)
}

func (b *Buyer) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.CallTimeout)
}

// ListProducts returns the merchant's catalog.
func (b *Buyer) ListProducts(ctx context.Context) ([]*interbankv1.Product, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.ListProducts(ctx, &interbankv1.ListProductsRequest{})
	if err != nil {
		return nil, callError("ListProducts", err)
	}
	return resp.GetProducts(), nil
}

// Balance returns the balance of the profile's account.
func (b *Buyer) Balance(ctx context.Context) (*interbankv1.GetBalanceResponse, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Accounts.GetBalance(ctx, &interbankv1.GetBalanceRequest{AccountId: b.Profile.AccountID})
	if err != nil {
		return nil, callError("GetBalance", err)
	}
	return resp, nil
}

// Statement returns every entry of the profile's account since its opening.
func (b *Buyer) Statement(ctx context.Context) (*interbankv1.ListStatementResponse, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Accounts.ListStatement(ctx, &interbankv1.ListStatementRequest{AccountId: b.Profile.AccountID})
	if err != nil {
		return nil, callError("ListStatement", err)
	}
	return resp, nil
}

// CreateOrder orders quantity units of sku and checks the order digest the
// merchant returned against the recomputed one (an error if they differ).
func (b *Buyer) CreateOrder(ctx context.Context, sku string, quantity int32) (*interbankv1.CreateOrderResponse, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.CreateOrder(ctx, &interbankv1.CreateOrderRequest{
		RequestId: NewRequestID(),
		Lines:     []*interbankv1.CreateOrderLine{{Sku: sku, Quantity: quantity}},
	})
	if err != nil {
		return nil, callError("CreateOrder", err)
	}
	if err := envelope.VerifyOrderDigest(resp.GetOrder()); err != nil {
		return nil, err
	}
	return resp, nil
}

// Instruction builds the payment instruction for a created order with the
// profile's instrument named instrumentName ("card" or "account"), a fresh
// nonce and created_at now.
func (b *Buyer) Instruction(created *interbankv1.CreateOrderResponse, instrumentName string) (*interbankv1.PaymentInstruction, error) {
	instrument, err := b.Profile.Instrument(instrumentName)
	if err != nil {
		return nil, err
	}
	paymentInstrument, err := instrument.Proto()
	if err != nil {
		return nil, err
	}
	order := created.GetOrder()
	return &interbankv1.PaymentInstruction{
		Instrument:   paymentInstrument,
		Amount:       order.GetTotal(),
		OrderDigest:  order.GetOrderDigest(),
		OrderId:      order.GetOrderId(),
		MerchantName: order.GetMerchantName(),
		CustomerName: order.GetCustomerName(),
		Nonce:        envelope.NewNonce(),
		CreatedAt:    timestamppb.Now(),
	}, nil
}

// SubmitPayment pays a created order with the named instrument: it builds the
// instruction, seals it to the gateway key of created, dual-signs it and
// submits it. It returns the order as SubmitPayment answers it (CAPTURED or
// later when frictionless, CHALLENGE_REQUIRED when challenged).
func (b *Buyer) SubmitPayment(ctx context.Context, created *interbankv1.CreateOrderResponse, instrumentName string) (*interbankv1.Order, error) {
	instruction, err := b.Instruction(created, instrumentName)
	if err != nil {
		return nil, err
	}
	sealed, err := envelope.SealPayment(instruction, created.GetGatewayPublicKey(), created.GetGatewayKeyId(), b.signingKey)
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.SubmitPayment(ctx, &interbankv1.SubmitPaymentRequest{
		RequestId: NewRequestID(),
		OrderId:   created.GetOrder().GetOrderId(),
		Payment:   sealed.Payment,
	})
	if err != nil {
		return nil, callError("SubmitPayment", err)
	}
	return resp.GetOrder(), nil
}

// ReadOneTimeCode reads the one-time code for challengeID from the bank's
// device inbox (Subscribe from sequence 0). Secret: never print the result.
func (b *Buyer) ReadOneTimeCode(ctx context.Context, challengeID string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.WaitTimeout)
	defer cancel() // ends the stream, which otherwise waits for new events
	stream, err := b.Notifications.Subscribe(ctx, &interbankv1.SubscribeRequest{AfterSequence: 0})
	if err != nil {
		return "", callError("Subscribe", err)
	}
	for {
		event, err := stream.Recv()
		if err != nil {
			return "", callError(fmt.Sprintf("Subscribe (waiting for the code of challenge %s)", challengeID), err)
		}
		if code := event.GetOneTimeCode(); code != nil && code.GetChallengeId() == challengeID {
			return code.GetCode(), nil
		}
	}
}

// AnswerChallenge sends the one-time code for challengeID to the bank and
// returns the hold's status (AUTHORIZED when the code was right).
func (b *Buyer) AnswerChallenge(ctx context.Context, challengeID, code string) (interbankv1.HoldStatus, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Challenges.AnswerChallenge(ctx, &interbankv1.AnswerChallengeRequest{
		RequestId:   NewRequestID(),
		ChallengeId: challengeID,
		Code:        code,
	})
	if err != nil {
		return interbankv1.HoldStatus_HOLD_STATUS_UNSPECIFIED, callError("AnswerChallenge", err)
	}
	return resp.GetHoldStatus(), nil
}

// CompletePayment captures an order whose challenge was answered.
func (b *Buyer) CompletePayment(ctx context.Context, orderID string) (*interbankv1.Order, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.CompletePayment(ctx, &interbankv1.CompletePaymentRequest{
		RequestId: NewRequestID(),
		OrderId:   orderID,
	})
	if err != nil {
		return nil, callError("CompletePayment", err)
	}
	return resp.GetOrder(), nil
}

// GetOrder returns the order as the merchant knows it now.
func (b *Buyer) GetOrder(ctx context.Context, orderID string) (*interbankv1.Order, error) {
	ctx, cancel := b.callContext(ctx)
	defer cancel()
	resp, err := b.Orders.GetOrder(ctx, &interbankv1.GetOrderRequest{OrderId: orderID})
	if err != nil {
		return nil, callError("GetOrder", err)
	}
	return resp.GetOrder(), nil
}

// finalStatuses are the order states no further transition leaves.
var finalStatuses = map[interbankv1.OrderStatus]bool{
	interbankv1.OrderStatus_ORDER_STATUS_FAILED:   true,
	interbankv1.OrderStatus_ORDER_STATUS_CANCELED: true,
	interbankv1.OrderStatus_ORDER_STATUS_REFUNDED: true,
	interbankv1.OrderStatus_ORDER_STATUS_REVERSED: true,
}

// WaitForStatus polls GetOrder until the order reaches want, fails early when
// it reaches a final state instead, and gives up after WaitTimeout.
func (b *Buyer) WaitForStatus(ctx context.Context, orderID string, want interbankv1.OrderStatus) (*interbankv1.Order, error) {
	ctx, cancel := context.WithTimeout(ctx, b.WaitTimeout)
	defer cancel()
	ticker := time.NewTicker(b.PollInterval)
	defer ticker.Stop()
	var last interbankv1.OrderStatus
	for {
		order, err := b.GetOrder(ctx, orderID)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if order != nil {
			last = order.GetStatus()
			if last == want {
				return order, nil
			}
			if finalStatuses[last] {
				return order, fmt.Errorf("order %s ended %s (%s) instead of %s", orderID, last, order.GetFailureReason(), want)
			}
		}
		select {
		case <-ctx.Done():
			return order, fmt.Errorf("order %s still %s after %s, waiting for %s", orderID, last, b.WaitTimeout, want)
		case <-ticker.C:
		}
	}
}

// Purchase is a completed purchase.
type Purchase struct {
	// Order is the order in DELIVERY_CONFIRMED.
	Order *interbankv1.Order
	// Submitted is the order's status as SubmitPayment answered.
	Submitted interbankv1.OrderStatus
	// Challenged says whether the issuer asked for a one-time code.
	Challenged bool
}

// Buy orders quantity units of sku, pays with the named instrument, answers
// the challenge if the issuer asks for one, and waits until the merchant
// confirms delivery.
func (b *Buyer) Buy(ctx context.Context, sku string, quantity int32, instrumentName string) (*Purchase, error) {
	created, err := b.CreateOrder(ctx, sku, quantity)
	if err != nil {
		return nil, err
	}
	orderID := created.GetOrder().GetOrderId()
	submitted, err := b.SubmitPayment(ctx, created, instrumentName)
	if err != nil {
		return nil, err
	}
	purchase := &Purchase{Submitted: submitted.GetStatus()}
	switch submitted.GetStatus() {
	case interbankv1.OrderStatus_ORDER_STATUS_FAILED:
		return purchase, fmt.Errorf("order %s: payment failed: %s", orderID, submitted.GetFailureReason())
	case interbankv1.OrderStatus_ORDER_STATUS_CHALLENGE_REQUIRED:
		purchase.Challenged = true
		challengeID := submitted.GetChallenge().GetChallengeId()
		if challengeID == "" {
			return purchase, fmt.Errorf("order %s is CHALLENGE_REQUIRED without a challenge id", orderID)
		}
		code, err := b.ReadOneTimeCode(ctx, challengeID)
		if err != nil {
			return purchase, err
		}
		hold, err := b.AnswerChallenge(ctx, challengeID, code)
		if err != nil {
			return purchase, err
		}
		if hold != interbankv1.HoldStatus_HOLD_STATUS_AUTHORIZED {
			return purchase, fmt.Errorf("order %s: the challenge answer left the hold %s, want HOLD_STATUS_AUTHORIZED", orderID, hold)
		}
		if _, err := b.CompletePayment(ctx, orderID); err != nil {
			return purchase, err
		}
	}
	purchase.Order, err = b.WaitForStatus(ctx, orderID, interbankv1.OrderStatus_ORDER_STATUS_DELIVERY_CONFIRMED)
	return purchase, err
}
