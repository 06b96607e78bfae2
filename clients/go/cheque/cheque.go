// Package cheque writes the paynet electronic cheque of docs/cheque.md: the
// cheque document the drawer signs offline, the bank's account certificate
// and the payee's endorsement, each in its canonical encoding and signed with
// Ed25519 over a context string followed by that encoding.
//
// Encode refuses a field that breaks the rules a reader applies (bounds,
// UTF-8 in Unicode NFC without control or unassigned code points, positive
// 64-bit amounts and serials, ISO 4217 currency, calendar dates), so what it
// writes is what the network reads. Errors name the field, never a key.
package cheque

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tags start each encoding (length-prefixed); contexts precede the encoding
// in what a signature covers.
const (
	ChequeTag          = "paynet-cheque-v1"
	CertificateTag     = "paynet-account-certificate-v1"
	EndorsementTag     = "paynet-endorsement-v1"
	ChequeContext      = "paynet-cheque-v1 drawer signature\x00"
	CertificateContext = "paynet-account-certificate-v1 bank signature\x00"
	EndorsementContext = "paynet-endorsement-v1 payee signature\x00"
)

// Bounds of the fields, in bytes.
const (
	BankCodeMaxBytes         = 64
	BankKeyIDMaxBytes        = 64
	AccountReferenceMaxBytes = 64
	PayeeMaxBytes            = 64
	OrderReferenceMaxBytes   = 128
	MemoMaxBytes             = 140
	SignatureSize            = ed25519.SignatureSize
	DigestSize               = sha256.Size
)

// ErrInvalid is wrapped by every error about a field.
var ErrInvalid = errors.New("cheque: invalid field")

// Date is a calendar date (no time, no zone).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads an ISO 8601 calendar date, YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%w: date %q: %v", ErrInvalid, s, err)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// String is the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool {
	return d.Year < e.Year || d.Year == e.Year && (d.Month < e.Month || d.Month == e.Month && d.Day < e.Day)
}

// Cheque is the document the drawer writes and signs (docs/cheque.md section 3).
type Cheque struct {
	DraweeBankCode   string // bank holding the account, 1-64 bytes
	AccountReference []byte // opaque cheque account reference, 1-64 bytes
	Serial           int64  // 1 to 2^63-1, within the certificate's range
	Payee            string // the payee's network name, 1-64 bytes
	AmountMinor      int64  // 1 to 2^63-1 minor units
	CurrencyCode     string // ISO 4217, three capital letters
	Date             Date   // the date written on the cheque
	OrderReference   string // the order it pays, 0-128 bytes
	Memo             string // free text, 0-140 bytes
}

// AccountCertificate is the drawee bank's certificate of a cheque account (section 2).
type AccountCertificate struct {
	BankCode         string // 1-64 bytes
	BankKeyID        string // which of the bank's cheque-signing keys signs, 1-64 bytes
	AccountReference []byte // 1-64 bytes
	HolderPublicKey  ed25519.PublicKey
	FirstSerial      int64
	LastSerial       int64 // at least FirstSerial
	NotBefore        Date
	NotAfter         Date // not before NotBefore
}

// Endorsement is the payee's countersignature of a signed cheque (section 4).
type Endorsement struct {
	ChequeDigest  []byte // Digest of the signed cheque
	Payee         string // the endorser, the cheque's payee, 1-64 bytes
	PayToBankCode string // "pay to the order of" this bank, 1-64 bytes
}

type writer struct {
	doc string
	out []byte
	err error
}

func newWriter(doc, tag string) *writer {
	w := &writer{doc: doc}
	w.out = binary.BigEndian.AppendUint16(w.out, uint16(len(tag)))
	w.out = append(w.out, tag...)
	return w
}

func (w *writer) fail(field, format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("%w: %s: %s %s", ErrInvalid, w.doc, field, fmt.Sprintf(format, args...))
	}
}

func (w *writer) blob(field string, value []byte, low, high int) {
	switch {
	case len(value) > high:
		w.fail(field, "is %d bytes; at most %d are allowed", len(value), high)
	case len(value) < low:
		w.fail(field, "is empty; it is required")
	}
	w.out = binary.BigEndian.AppendUint16(w.out, uint16(len(value)))
	w.out = append(w.out, value...)
}

func (w *writer) text(field, value string, low, high int) {
	if !utf8.ValidString(value) {
		w.fail(field, "is not valid UTF-8")
	}
	for _, r := range value {
		if unicode.IsControl(r) || !assigned(r) {
			w.fail(field, "holds a control or unassigned code point U+%04X", r)
		}
	}
	if !norm.NFC.IsNormalString(value) {
		w.fail(field, "is not in Unicode normalization form C (NFC)")
	}
	w.blob(field, []byte(value), low, high)
}

// assigned reports whether r is an assigned code point (not general category Cn).
func assigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z,
		unicode.Cc, unicode.Cf, unicode.Co)
}

func (w *writer) fixed(field string, value []byte, size int) {
	if len(value) != size {
		w.fail(field, "is %d bytes; it must be %d", len(value), size)
	}
	w.out = append(w.out, value...)
}

func (w *writer) integer(field string, value, low int64) {
	if value < low {
		w.fail(field, "is %d; it must be from %d to 9223372036854775807", value, low)
	}
	w.out = binary.BigEndian.AppendUint64(w.out, uint64(value))
}

func (w *writer) currency(field, value string) {
	ok := len(value) == 3
	for i := 0; ok && i < 3; i++ {
		ok = 'A' <= value[i] && value[i] <= 'Z'
	}
	if !ok {
		w.fail(field, "%q is not three capital letters A-Z", value)
	}
	w.out = append(w.out, value...)
}

func (w *writer) date(field string, d Date) {
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	if d.Year < 1 || d.Year > 9999 || t.Year() != d.Year || t.Month() != d.Month || t.Day() != d.Day {
		w.fail(field, "%s is not a calendar date from year 1 to 9999", d)
	}
	w.out = binary.BigEndian.AppendUint16(w.out, uint16(d.Year))
	w.out = append(w.out, byte(d.Month), byte(d.Day))
}

func (w *writer) result() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.out, nil
}

// Encode is the cheque's canonical encoding.
func (c Cheque) Encode() ([]byte, error) {
	w := newWriter("cheque", ChequeTag)
	w.text("drawee_bank_code", c.DraweeBankCode, 1, BankCodeMaxBytes)
	w.blob("account_reference", c.AccountReference, 1, AccountReferenceMaxBytes)
	w.integer("serial", c.Serial, 1)
	w.text("payee", c.Payee, 1, PayeeMaxBytes)
	w.integer("amount_minor", c.AmountMinor, 1)
	w.currency("currency_code", c.CurrencyCode)
	w.date("date", c.Date)
	w.text("order_reference", c.OrderReference, 0, OrderReferenceMaxBytes)
	w.text("memo", c.Memo, 0, MemoMaxBytes)
	return w.result()
}

// Encode is the account certificate's canonical encoding.
func (a AccountCertificate) Encode() ([]byte, error) {
	w := newWriter("account certificate", CertificateTag)
	w.text("bank_code", a.BankCode, 1, BankCodeMaxBytes)
	w.text("bank_key_id", a.BankKeyID, 1, BankKeyIDMaxBytes)
	w.blob("account_reference", a.AccountReference, 1, AccountReferenceMaxBytes)
	w.fixed("holder_public_key", a.HolderPublicKey, ed25519.PublicKeySize)
	w.integer("first_serial", a.FirstSerial, 1)
	w.integer("last_serial", a.LastSerial, max(a.FirstSerial, 1))
	w.date("not_before", a.NotBefore)
	if a.NotAfter.Before(a.NotBefore) {
		w.fail("not_after", "%s is before not_before %s", a.NotAfter, a.NotBefore)
	}
	w.date("not_after", a.NotAfter)
	return w.result()
}

// Encode is the endorsement's canonical encoding.
func (e Endorsement) Encode() ([]byte, error) {
	w := newWriter("endorsement", EndorsementTag)
	w.fixed("cheque_digest", e.ChequeDigest, DigestSize)
	w.text("payee", e.Payee, 1, PayeeMaxBytes)
	w.text("pay_to_bank_code", e.PayToBankCode, 1, BankCodeMaxBytes)
	return w.result()
}

// document is one of the three documents.
type document interface {
	Encode() ([]byte, error)
}

func contextOf(d document) string {
	switch d.(type) {
	case Cheque, *Cheque:
		return ChequeContext
	case AccountCertificate, *AccountCertificate:
		return CertificateContext
	default:
		return EndorsementContext
	}
}

// SignatureMessage is what a document's signature covers: its context || its encoding.
func SignatureMessage(d document) ([]byte, error) {
	encoded, err := d.Encode()
	if err != nil {
		return nil, err
	}
	return append([]byte(contextOf(d)), encoded...), nil
}

// Sign is the signed document as it travels: its encoding || the 64-byte
// Ed25519 signature of key over SignatureMessage.
func Sign(key ed25519.PrivateKey, d document) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: signing key is not an Ed25519 private key", ErrInvalid)
	}
	message, err := SignatureMessage(d)
	if err != nil {
		return nil, err
	}
	encoded := message[len(contextOf(d)):]
	return append(append([]byte{}, encoded...), ed25519.Sign(key, message)...), nil
}

// Verify reports whether signed is d's encoding followed by key's signature of it.
func Verify(key ed25519.PublicKey, d document, signed []byte) bool {
	message, err := SignatureMessage(d)
	if err != nil || len(key) != ed25519.PublicKeySize || len(signed) != len(message)-len(contextOf(d))+SignatureSize {
		return false
	}
	encoded := message[len(contextOf(d)):]
	if string(signed[:len(encoded)]) != string(encoded) {
		return false
	}
	return ed25519.Verify(key, message, signed[len(encoded):])
}

// Digest is the SHA-256 of a signed cheque: what an endorsement names.
func Digest(signedCheque []byte) []byte {
	sum := sha256.Sum256(signedCheque)
	return sum[:]
}

// Endorse signs the payee's endorsement of signedCheque, pay to the order of payToBankCode.
func Endorse(key ed25519.PrivateKey, signedCheque []byte, payee, payToBankCode string) ([]byte, error) {
	return Sign(key, Endorsement{ChequeDigest: Digest(signedCheque), Payee: payee, PayToBankCode: payToBankCode})
}
