package envelope_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/paynet/paynet/clients/go/envelope"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// vectors mirrors clients/vectors/envelope.json.
type vectors struct {
	Order struct {
		OrderID      string `json:"order_id"`
		MerchantName string `json:"merchant_name"`
		CustomerName string `json:"customer_name"`
		CurrencyCode string `json:"currency_code"`
		TotalMinor   int64  `json:"total_minor"`
		Lines        []struct {
			SKU            string `json:"sku"`
			Quantity       int64  `json:"quantity"`
			UnitPriceMinor int64  `json:"unit_price_minor"`
		} `json:"lines"`
	} `json:"order"`
	OrderDigestText      string          `json:"order_digest_text"`
	OrderDigest          string          `json:"order_digest"`
	Instruction          json.RawMessage `json:"instruction"`
	InstructionBytes     string          `json:"instruction_bytes"`
	GatewayPrivateKey    string          `json:"gateway_private_key"`
	GatewayPrivateKeyPEM string          `json:"gateway_private_key_pem"`
	GatewayPublicKey     string          `json:"gateway_public_key"`
	HPKEInfo             string          `json:"hpke_info"`
	HPKEAAD              string          `json:"hpke_aad"`
	SealedInstruction    string          `json:"sealed_instruction"`
	WrongOrderDigest     string          `json:"wrong_order_digest"`
	SigningPrivateKey    string          `json:"signing_private_key"`
	SigningPrivateKeyPEM string          `json:"signing_private_key_pem"`
	SigningPublicKey     string          `json:"signing_public_key"`
	DualSignatureMessage string          `json:"dual_signature_message"`
	DualSignature        string          `json:"dual_signature"`
}

func load(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "vectors", "envelope.json"))
	if err != nil {
		t.Fatalf("read the test vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse the test vectors: %v", err)
	}
	return v
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in the vectors: %v", err)
	}
	return b
}

func digestInput(v vectors) envelope.DigestInput {
	in := envelope.DigestInput{
		OrderID:      v.Order.OrderID,
		MerchantName: v.Order.MerchantName,
		CustomerName: v.Order.CustomerName,
		CurrencyCode: v.Order.CurrencyCode,
		TotalMinor:   v.Order.TotalMinor,
	}
	for _, l := range v.Order.Lines {
		in.Lines = append(in.Lines, envelope.DigestLine{SKU: l.SKU, Quantity: l.Quantity, UnitPriceMinor: l.UnitPriceMinor})
	}
	return in
}

func TestOrderDigestMatchesVectors(t *testing.T) {
	v := load(t)
	in := digestInput(v)
	if got := envelope.OrderDigestText(in); got != v.OrderDigestText {
		t.Errorf("digest text:\n got %q\nwant %q", got, v.OrderDigestText)
	}
	if got := hex.EncodeToString(envelope.OrderDigest(in)); got != v.OrderDigest {
		t.Errorf("digest: got %s want %s", got, v.OrderDigest)
	}
}

func TestOrderDigestOfProtoOrder(t *testing.T) {
	v := load(t)
	order := &interbankv1.Order{
		OrderId:      v.Order.OrderID,
		MerchantName: v.Order.MerchantName,
		CustomerName: v.Order.CustomerName,
		Total:        &interbankv1.Money{AmountMinor: v.Order.TotalMinor, CurrencyCode: v.Order.CurrencyCode},
		OrderDigest:  unhex(t, v.OrderDigest),
	}
	for _, l := range v.Order.Lines {
		price := &interbankv1.Money{AmountMinor: l.UnitPriceMinor, CurrencyCode: v.Order.CurrencyCode}
		order.Lines = append(order.Lines, &interbankv1.OrderLine{Sku: l.SKU, Quantity: int32(l.Quantity), UnitPrice: price})
	}
	if err := envelope.VerifyOrderDigest(order); err != nil {
		t.Errorf("VerifyOrderDigest: %v", err)
	}
	order.Lines[0].Quantity++
	if err := envelope.VerifyOrderDigest(order); err == nil {
		t.Error("VerifyOrderDigest accepted an order whose lines changed")
	}
}

func TestInstructionJSONSerializesToInstructionBytes(t *testing.T) {
	v := load(t)
	var instruction interbankv1.PaymentInstruction
	if err := protojson.Unmarshal(v.Instruction, &instruction); err != nil {
		t.Fatalf("parse the instruction JSON: %v", err)
	}
	data, err := envelope.MarshalInstruction(&instruction)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(data); got != v.InstructionBytes {
		t.Errorf("instruction bytes:\n got %s\nwant %s", got, v.InstructionBytes)
	}
	if got := hex.EncodeToString(instruction.GetOrderDigest()); got != v.OrderDigest {
		t.Errorf("instruction order digest: got %s want %s", got, v.OrderDigest)
	}
}

func TestHPKEInfo(t *testing.T) {
	v := load(t)
	if got := hex.EncodeToString(envelope.HPKEInfo(unhex(t, v.OrderDigest))); got != v.HPKEInfo {
		t.Errorf("HPKE info: got %s want %s", got, v.HPKEInfo)
	}
	if v.HPKEAAD != "" {
		t.Errorf("vectors use aad %q; this client seals with an empty aad", v.HPKEAAD)
	}
}

func TestDualSignatureMatchesVectors(t *testing.T) {
	v := load(t)
	key := ed25519.NewKeyFromSeed(unhex(t, v.SigningPrivateKey))
	digest, data := unhex(t, v.OrderDigest), unhex(t, v.InstructionBytes)
	if got := hex.EncodeToString(envelope.DualSignatureMessage(digest, data)); got != v.DualSignatureMessage {
		t.Errorf("dual signature message: got %s want %s", got, v.DualSignatureMessage)
	}
	signature, err := envelope.SignDual(key, digest, data)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(signature); got != v.DualSignature {
		t.Errorf("dual signature: got %s want %s", got, v.DualSignature)
	}
	public := ed25519.PublicKey(unhex(t, v.SigningPublicKey))
	if !bytes.Equal(key.Public().(ed25519.PublicKey), public) {
		t.Error("signing public key differs from the seed's")
	}
	if !envelope.VerifyDual(public, signature, digest, data) {
		t.Error("VerifyDual rejected the vector signature")
	}
	if envelope.VerifyDual(public, signature, digest, append(data, 0)) {
		t.Error("VerifyDual accepted the signature over other instruction bytes")
	}

	fromPEM, err := envelope.ParseSigningKeyPEM([]byte(v.SigningPrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromPEM.Seed(), key.Seed()) {
		t.Error("the PEM signing key differs from the raw seed")
	}
}

func TestSealedInstructionOpensOnlyForItsOrder(t *testing.T) {
	v := load(t)
	key, err := envelope.NewGatewayPrivateKey(unhex(t, v.GatewayPrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.PublicKey().Bytes()); got != v.GatewayPublicKey {
		t.Errorf("gateway public key: got %s want %s", got, v.GatewayPublicKey)
	}
	sealed := unhex(t, v.SealedInstruction)
	opened, err := envelope.OpenInstruction(key, unhex(t, v.OrderDigest), sealed)
	if err != nil {
		t.Fatalf("open the vector sealing: %v", err)
	}
	if got := hex.EncodeToString(opened); got != v.InstructionBytes {
		t.Errorf("opened bytes differ from instruction_bytes")
	}
	if _, err := envelope.OpenInstruction(key, unhex(t, v.WrongOrderDigest), sealed); !errors.Is(err, envelope.ErrUnreadable) {
		t.Errorf("opening with the wrong order digest: got %v, want ErrUnreadable", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := envelope.OpenInstruction(key, unhex(t, v.OrderDigest), tampered); !errors.Is(err, envelope.ErrUnreadable) {
		t.Errorf("opening a tampered sealing: got %v, want ErrUnreadable", err)
	}

	fromPEM, err := envelope.ParseGatewayPrivateKeyPEM([]byte(v.GatewayPrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.OpenInstruction(fromPEM, unhex(t, v.OrderDigest), sealed); err != nil {
		t.Errorf("open with the PEM gateway key: %v", err)
	}
}

func TestFreshSealingOpensAgain(t *testing.T) {
	v := load(t)
	digest, data := unhex(t, v.OrderDigest), unhex(t, v.InstructionBytes)
	sealed, err := envelope.SealInstruction(unhex(t, v.GatewayPublicKey), digest, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := envelope.EncapsulatedKeySize + len(data) + 16; len(sealed) != want {
		t.Errorf("sealed is %d bytes, want enc(32) + %d + tag(16) = %d", len(sealed), len(data), want)
	}
	if bytes.Equal(sealed, unhex(t, v.SealedInstruction)) {
		t.Error("a fresh sealing equals the vector's: the ephemeral key is not fresh")
	}
	key, err := envelope.NewGatewayPrivateKey(unhex(t, v.GatewayPrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	opened, err := envelope.OpenInstruction(key, digest, sealed)
	if err != nil {
		t.Fatalf("open a fresh sealing: %v", err)
	}
	if !bytes.Equal(opened, data) {
		t.Error("a fresh sealing opened to other bytes")
	}
}

func TestSealPaymentSignsWhatItSeals(t *testing.T) {
	v := load(t)
	var instruction interbankv1.PaymentInstruction
	if err := protojson.Unmarshal(v.Instruction, &instruction); err != nil {
		t.Fatal(err)
	}
	signing := ed25519.NewKeyFromSeed(unhex(t, v.SigningPrivateKey))
	sealed, err := envelope.SealPayment(&instruction, unhex(t, v.GatewayPublicKey), "key-1", signing)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(sealed.Payment.GetDualSignature()); got != v.DualSignature {
		t.Errorf("SealPayment's dual signature differs from the vector's")
	}
	if sealed.Payment.GetGatewayKeyId() != "key-1" {
		t.Errorf("gateway key id: got %q", sealed.Payment.GetGatewayKeyId())
	}
	key, _ := envelope.NewGatewayPrivateKey(unhex(t, v.GatewayPrivateKey))
	opened, err := envelope.OpenInstruction(key, unhex(t, v.OrderDigest), sealed.Payment.GetSealedInstruction())
	if err != nil || !bytes.Equal(opened, sealed.InstructionBytes) {
		t.Errorf("SealPayment's sealing does not open to its instruction bytes (err %v)", err)
	}
}
