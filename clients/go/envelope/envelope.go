// Package envelope implements the paynet payment envelope of docs/envelope.md:
// the order digest, the HPKE sealing of the payment instruction to the
// gateway, and the customer's Ed25519 dual signature.
//
// None of the functions here log or put secrets (instrument numbers, keys,
// instruction bytes) into error messages.
package envelope

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"

	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"google.golang.org/protobuf/proto"
)

const (
	// DigestSize is the size of an order digest (SHA-256).
	DigestSize = sha256.Size
	// NonceSize is the number of random bytes NewNonce returns (the minimum the network accepts).
	NonceSize = 16
	// EncapsulatedKeySize is the size of the HPKE encapsulated key that starts a
	// sealed instruction (an X25519 public key).
	EncapsulatedKeySize = 32
	// InfoPrefix is the ASCII prefix of the HPKE info; the order digest follows it.
	InfoPrefix = "interbank.v1 payment instruction"
	// orderDigestHeader is the first line of the order's canonical text.
	orderDigestHeader = "interbank.v1.order"
)

// ErrUnreadable is wrapped by OpenInstruction's errors: the sealed instruction
// cannot be opened with this key for this order digest (tampered, sealed to
// another key, or sealed for another order). The gateway answers
// INSTRUCTION_UNREADABLE in that case.
var ErrUnreadable = errors.New("sealed instruction cannot be opened")

// The HPKE suite of the network: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES128GCM()
)

// DigestLine is one order line as it enters the order digest.
type DigestLine struct {
	SKU            string
	Quantity       int64
	UnitPriceMinor int64
}

// DigestInput is what the order digest covers.
type DigestInput struct {
	OrderID      string
	MerchantName string
	CustomerName string
	CurrencyCode string
	TotalMinor   int64
	Lines        []DigestLine
}

// DigestInputOf takes the digest's fields from an order as CreateOrder returns
// it. The currency is the total's; each line's unit price is its unit_price.
func DigestInputOf(order *interbankv1.Order) DigestInput {
	in := DigestInput{
		OrderID:      order.GetOrderId(),
		MerchantName: order.GetMerchantName(),
		CustomerName: order.GetCustomerName(),
		CurrencyCode: order.GetTotal().GetCurrencyCode(),
		TotalMinor:   order.GetTotal().GetAmountMinor(),
	}
	for _, line := range order.GetLines() {
		in.Lines = append(in.Lines, DigestLine{
			SKU:            line.GetSku(),
			Quantity:       int64(line.GetQuantity()),
			UnitPriceMinor: line.GetUnitPrice().GetAmountMinor(),
		})
	}
	return in
}

// OrderDigestText is the canonical UTF-8 text whose SHA-256 is the order digest:
// one "\n"-terminated line each for the header, order id, merchant, customer,
// currency and total, then "sku:quantity:unit price" per order line, in order.
func OrderDigestText(in DigestInput) string {
	var b strings.Builder
	for _, field := range []string{
		orderDigestHeader, in.OrderID, in.MerchantName, in.CustomerName,
		in.CurrencyCode, strconv.FormatInt(in.TotalMinor, 10),
	} {
		b.WriteString(field)
		b.WriteByte('\n')
	}
	for _, line := range in.Lines {
		fmt.Fprintf(&b, "%s:%d:%d\n", line.SKU, line.Quantity, line.UnitPriceMinor)
	}
	return b.String()
}

// OrderDigest is the SHA-256 of OrderDigestText(in).
func OrderDigest(in DigestInput) []byte {
	sum := sha256.Sum256([]byte(OrderDigestText(in)))
	return sum[:]
}

// VerifyOrderDigest recomputes the digest of order and reports an error when it
// differs from order.order_digest: the customer must then refuse to pay.
func VerifyOrderDigest(order *interbankv1.Order) error {
	want := OrderDigest(DigestInputOf(order))
	if !bytes.Equal(want, order.GetOrderDigest()) {
		return fmt.Errorf("order %s: the merchant's order digest differs from the recomputed one; refusing to pay", order.GetOrderId())
	}
	return nil
}

// HPKEInfo is the HPKE info for an order: InfoPrefix || order digest.
func HPKEInfo(orderDigest []byte) []byte {
	return append([]byte(InfoPrefix), orderDigest...)
}

// NewNonce returns NonceSize fresh random bytes for PaymentInstruction.nonce.
func NewNonce() []byte {
	nonce := make([]byte, NonceSize)
	rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	return nonce
}

// MarshalInstruction serializes an instruction with standard protobuf binary
// encoding: the instruction bytes that are sealed and signed. Serialize once
// and keep the bytes; receivers never re-serialize.
func MarshalInstruction(instruction *interbankv1.PaymentInstruction) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(instruction)
	if err != nil {
		return nil, fmt.Errorf("serialize payment instruction: %w", err)
	}
	return data, nil
}

// SealInstruction seals instruction bytes to the gateway's X25519 public key
// (32 raw bytes, CreateOrderResponse.gateway_public_key) for the order with
// orderDigest: HPKE base mode, single shot, empty aad. The result is
// enc (32 bytes) || ciphertext, for SealedPayment.sealed_instruction.
func SealInstruction(gatewayPublicKey, orderDigest, instructionBytes []byte) ([]byte, error) {
	if len(orderDigest) != DigestSize {
		return nil, fmt.Errorf("order digest is %d bytes, want %d", len(orderDigest), DigestSize)
	}
	pub, err := kem.NewPublicKey(gatewayPublicKey)
	if err != nil {
		return nil, fmt.Errorf("gateway public key is not an X25519 key of 32 bytes: %w", err)
	}
	sealed, err := hpke.Seal(pub, kdf, aead, HPKEInfo(orderDigest), instructionBytes)
	if err != nil {
		return nil, fmt.Errorf("HPKE seal: %w", err)
	}
	return sealed, nil
}

// OpenInstruction opens a sealed instruction with the gateway's private key for
// the order with orderDigest and returns the instruction bytes. Every failure
// wraps ErrUnreadable.
func OpenInstruction(gatewayPrivateKey hpke.PrivateKey, orderDigest, sealed []byte) ([]byte, error) {
	if len(orderDigest) != DigestSize {
		return nil, fmt.Errorf("%w: order digest is %d bytes, want %d", ErrUnreadable, len(orderDigest), DigestSize)
	}
	if len(sealed) < EncapsulatedKeySize+aeadTagSize {
		return nil, fmt.Errorf("%w: %d bytes is too short for enc and tag", ErrUnreadable, len(sealed))
	}
	data, err := hpke.Open(gatewayPrivateKey, kdf, aead, HPKEInfo(orderDigest), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: tampered, or sealed for another key or order", ErrUnreadable)
	}
	return data, nil
}

// aeadTagSize is the AES-128-GCM tag appended to the ciphertext.
const aeadTagSize = 16

// NewGatewayPrivateKey makes an HPKE private key from a raw 32-byte X25519 key.
func NewGatewayPrivateKey(raw []byte) (hpke.PrivateKey, error) {
	key, err := kem.NewPrivateKey(raw)
	if err != nil {
		return nil, errors.New("gateway private key is not a 32-byte X25519 key")
	}
	return key, nil
}

// ParseGatewayPrivateKeyPEM reads an X25519 private key in PKCS#8 PEM.
func ParseGatewayPrivateKeyPEM(pemText []byte) (hpke.PrivateKey, error) {
	parsed, err := parsePKCS8PEM(pemText)
	if err != nil {
		return nil, fmt.Errorf("gateway private key: %w", err)
	}
	key, ok := parsed.(*ecdh.PrivateKey)
	if !ok || key.Curve() != ecdh.X25519() {
		return nil, errors.New("gateway private key: not an X25519 key")
	}
	return hpke.NewDHKEMPrivateKey(key)
}

// ParseSigningKeyPEM reads the customer's Ed25519 signing key in PKCS#8 PEM.
func ParseSigningKeyPEM(pemText []byte) (ed25519.PrivateKey, error) {
	parsed, err := parsePKCS8PEM(pemText)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("signing key: not an Ed25519 key")
	}
	return key, nil
}

// parsePKCS8PEM decodes the first PEM block and parses it as PKCS#8.
func parsePKCS8PEM(pemText []byte) (any, error) {
	block, _ := pem.Decode(pemText)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKCS#8 private key")
	}
	return key, nil
}

// DualSignatureMessage is the 64-byte message the dual signature covers:
// order digest || SHA-256(instruction bytes).
func DualSignatureMessage(orderDigest, instructionBytes []byte) []byte {
	sum := sha256.Sum256(instructionBytes)
	return append(append(make([]byte, 0, 64), orderDigest...), sum[:]...)
}

// SignDual signs DualSignatureMessage with the customer's enrolled Ed25519 key
// (pure Ed25519, RFC 8032) and returns the 64-byte SealedPayment.dual_signature.
func SignDual(key ed25519.PrivateKey, orderDigest, instructionBytes []byte) ([]byte, error) {
	if len(orderDigest) != DigestSize {
		return nil, fmt.Errorf("order digest is %d bytes, want %d", len(orderDigest), DigestSize)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("signing key is not an Ed25519 private key")
	}
	return ed25519.Sign(key, DualSignatureMessage(orderDigest, instructionBytes)), nil
}

// VerifyDual reports whether signature is a valid dual signature by public over
// orderDigest and instructionBytes.
func VerifyDual(public ed25519.PublicKey, signature, orderDigest, instructionBytes []byte) bool {
	if len(public) != ed25519.PublicKeySize || len(orderDigest) != DigestSize {
		return false
	}
	return ed25519.Verify(public, DualSignatureMessage(orderDigest, instructionBytes), signature)
}

// Sealed is a payment instruction ready for SubmitPayment, with the exact
// instruction bytes that were sealed and signed.
type Sealed struct {
	// InstructionBytes is the serialized PaymentInstruction. Secret: it holds
	// the instrument number.
	InstructionBytes []byte
	// Payment is the SealedPayment to send to the merchant.
	Payment *interbankv1.SealedPayment
}

// SealPayment serializes instruction once, seals it to the gateway for the
// instruction's own order digest and dual-signs it.
func SealPayment(instruction *interbankv1.PaymentInstruction, gatewayPublicKey []byte, gatewayKeyID string, signingKey ed25519.PrivateKey) (*Sealed, error) {
	data, err := MarshalInstruction(instruction)
	if err != nil {
		return nil, err
	}
	digest := instruction.GetOrderDigest()
	sealed, err := SealInstruction(gatewayPublicKey, digest, data)
	if err != nil {
		return nil, err
	}
	signature, err := SignDual(signingKey, digest, data)
	if err != nil {
		return nil, err
	}
	return &Sealed{
		InstructionBytes: data,
		Payment: &interbankv1.SealedPayment{
			SealedInstruction: sealed,
			DualSignature:     signature,
			GatewayKeyId:      gatewayKeyID,
		},
	}, nil
}
