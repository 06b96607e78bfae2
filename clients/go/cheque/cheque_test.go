package cheque_test

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paynet/paynet/clients/go/cheque"
)

// signedVector is one signed document of clients/vectors/cheque.json.
type signedVector[F any] struct {
	About            string `json:"about"`
	Fields           F      `json:"fields"`
	Encoded          string `json:"encoded"`
	SignatureMessage string `json:"signature_message"`
	Signature        string `json:"signature"`
	Signed           string `json:"signed"`
	Digest           string `json:"digest"`
}

type chequeFields struct {
	DraweeBankCode   string `json:"drawee_bank_code"`
	AccountReference string `json:"account_reference"`
	Serial           int64  `json:"serial"`
	Payee            string `json:"payee"`
	AmountMinor      int64  `json:"amount_minor"`
	CurrencyCode     string `json:"currency_code"`
	Date             string `json:"date"`
	OrderReference   string `json:"order_reference"`
	Memo             string `json:"memo"`
}

type certificateFields struct {
	BankCode         string `json:"bank_code"`
	BankKeyID        string `json:"bank_key_id"`
	AccountReference string `json:"account_reference"`
	HolderPublicKey  string `json:"holder_public_key"`
	FirstSerial      int64  `json:"first_serial"`
	LastSerial       int64  `json:"last_serial"`
	NotBefore        string `json:"not_before"`
	NotAfter         string `json:"not_after"`
}

type endorsementFields struct {
	ChequeDigest  string `json:"cheque_digest"`
	Payee         string `json:"payee"`
	PayToBankCode string `json:"pay_to_bank_code"`
}

type keyPair struct {
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
}

// vectors mirrors clients/vectors/cheque.json.
type vectors struct {
	Contexts struct {
		Cheque             string `json:"cheque"`
		AccountCertificate string `json:"account_certificate"`
		Endorsement        string `json:"endorsement"`
	} `json:"contexts"`
	Keys struct {
		Drawer keyPair `json:"drawer"`
		Bank   keyPair `json:"bank"`
		Payee  keyPair `json:"payee"`
	} `json:"keys"`
	AccountCertificate signedVector[certificateFields] `json:"account_certificate"`
	Cheques            []signedVector[chequeFields]    `json:"cheques"`
	Endorsement        signedVector[endorsementFields] `json:"endorsement"`
}

func load(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "vectors", "cheque.json"))
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

func date(t *testing.T, s string) cheque.Date {
	t.Helper()
	d, err := cheque.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func private(t *testing.T, k keyPair) ed25519.PrivateKey {
	t.Helper()
	key := ed25519.NewKeyFromSeed(unhex(t, k.PrivateKey))
	if got := hex.EncodeToString(key.Public().(ed25519.PublicKey)); got != k.PublicKey {
		t.Fatalf("public key of the seed: got %s want %s", got, k.PublicKey)
	}
	return key
}

func chequeOf(t *testing.T, f chequeFields) cheque.Cheque {
	return cheque.Cheque{
		DraweeBankCode:   f.DraweeBankCode,
		AccountReference: unhex(t, f.AccountReference),
		Serial:           f.Serial,
		Payee:            f.Payee,
		AmountMinor:      f.AmountMinor,
		CurrencyCode:     f.CurrencyCode,
		Date:             date(t, f.Date),
		OrderReference:   f.OrderReference,
		Memo:             f.Memo,
	}
}

// checkSigned encodes and signs d and compares every step with the vector.
func checkSigned[F any](t *testing.T, name string, key ed25519.PrivateKey, d interface{ Encode() ([]byte, error) }, v signedVector[F]) []byte {
	t.Helper()
	encoded, err := d.Encode()
	if err != nil {
		t.Fatalf("%s: Encode: %v", name, err)
	}
	if got := hex.EncodeToString(encoded); got != v.Encoded {
		t.Errorf("%s encoding:\n got %s\nwant %s", name, got, v.Encoded)
	}
	message, err := cheque.SignatureMessage(d)
	if err != nil || hex.EncodeToString(message) != v.SignatureMessage {
		t.Errorf("%s signature message: got %x (%v) want %s", name, message, err, v.SignatureMessage)
	}
	signed, err := cheque.Sign(key, d)
	if err != nil {
		t.Fatalf("%s: Sign: %v", name, err)
	}
	if got := hex.EncodeToString(signed); got != v.Signed {
		t.Errorf("%s signed:\n got %s\nwant %s", name, got, v.Signed)
	}
	if !cheque.Verify(key.Public().(ed25519.PublicKey), d, signed) {
		t.Errorf("%s: Verify refused its own signature", name)
	}
	return signed
}

func TestChequesMatchVectors(t *testing.T) {
	v := load(t)
	drawer := private(t, v.Keys.Drawer)
	for _, cv := range v.Cheques {
		signed := checkSigned(t, "cheque "+cv.About, drawer, chequeOf(t, cv.Fields), cv)
		if got := hex.EncodeToString(cheque.Digest(signed)); got != cv.Digest {
			t.Errorf("cheque digest: got %s want %s", got, cv.Digest)
		}
	}
}

func TestAccountCertificateMatchesVectors(t *testing.T) {
	v := load(t)
	f := v.AccountCertificate.Fields
	cert := cheque.AccountCertificate{
		BankCode:         f.BankCode,
		BankKeyID:        f.BankKeyID,
		AccountReference: unhex(t, f.AccountReference),
		HolderPublicKey:  unhex(t, f.HolderPublicKey),
		FirstSerial:      f.FirstSerial,
		LastSerial:       f.LastSerial,
		NotBefore:        date(t, f.NotBefore),
		NotAfter:         date(t, f.NotAfter),
	}
	checkSigned(t, "account certificate", private(t, v.Keys.Bank), cert, v.AccountCertificate)
}

func TestEndorsementMatchesVectors(t *testing.T) {
	v := load(t)
	f := v.Endorsement.Fields
	e := cheque.Endorsement{ChequeDigest: unhex(t, f.ChequeDigest), Payee: f.Payee, PayToBankCode: f.PayToBankCode}
	payee := private(t, v.Keys.Payee)
	checkSigned(t, "endorsement", payee, e, v.Endorsement)
	signed, err := cheque.Endorse(payee, unhex(t, v.Cheques[0].Signed), f.Payee, f.PayToBankCode)
	if err != nil || hex.EncodeToString(signed) != v.Endorsement.Signed {
		t.Errorf("Endorse: got %x (%v) want %s", signed, err, v.Endorsement.Signed)
	}
}

func TestContextsMatchVectors(t *testing.T) {
	v := load(t)
	for got, want := range map[string]string{
		cheque.ChequeContext:      v.Contexts.Cheque,
		cheque.CertificateContext: v.Contexts.AccountCertificate,
		cheque.EndorsementContext: v.Contexts.Endorsement,
	} {
		if hex.EncodeToString([]byte(got)) != want {
			t.Errorf("context %q: want %s", got, want)
		}
	}
}

func TestAlteredChequeFailsVerification(t *testing.T) {
	v := load(t)
	drawer := private(t, v.Keys.Drawer)
	c := chequeOf(t, v.Cheques[0].Fields)
	signed := unhex(t, v.Cheques[0].Signed)
	public := drawer.Public().(ed25519.PublicKey)
	altered := c
	altered.AmountMinor++
	if cheque.Verify(public, altered, signed) {
		t.Error("Verify accepted a cheque whose amount changed")
	}
	for i := range signed {
		flipped := append([]byte{}, signed...)
		flipped[i] ^= 0x01
		if cheque.Verify(public, c, flipped) {
			t.Fatalf("Verify accepted the signed cheque with byte %d altered", i)
		}
	}
}

func TestEncodeRefusesWhatAReaderRefuses(t *testing.T) {
	v := load(t)
	cases := map[string]func(*cheque.Cheque){
		"memo":             func(c *cheque.Cheque) { c.Memo = "Cafe\u0301" }, // not NFC
		"payee":            func(c *cheque.Cheque) { c.Payee = "sh\nop" },    // control
		"order_reference":  func(c *cheque.Cheque) { c.OrderReference = strings.Repeat("o", 129) },
		"drawee_bank_code": func(c *cheque.Cheque) { c.DraweeBankCode = "" },
		"amount_minor":     func(c *cheque.Cheque) { c.AmountMinor = 0 },
		"serial":           func(c *cheque.Cheque) { c.Serial = -1 },
		"currency_code":    func(c *cheque.Cheque) { c.CurrencyCode = "eur" },
		"date":             func(c *cheque.Cheque) { c.Date = cheque.Date{Year: 2026, Month: 2, Day: 30} },
	}
	for field, change := range cases {
		c := chequeOf(t, v.Cheques[0].Fields)
		change(&c)
		_, err := c.Encode()
		if !errors.Is(err, cheque.ErrInvalid) || !strings.Contains(err.Error(), "cheque: "+field+" ") {
			t.Errorf("%s: Encode gave %v, want a refusal naming the field", field, err)
		}
	}
	c := chequeOf(t, v.Cheques[0].Fields)
	c.Memo = "\u0378" // unassigned
	if _, err := c.Encode(); err == nil {
		t.Error("Encode accepted an unassigned code point")
	}
}
