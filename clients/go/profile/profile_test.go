package profile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"github.com/paynet/paynet/clients/go/profile"
)

const sample = `{
  "customer": "go-buyer",
  "ca_cert": "pki/ca.crt",
  "cert": "pki/go-buyer/cert.pem",
  "key": "/abs/key.pem",
  "signing_key": "pki/go-buyer/signing.key",
  "bank": {"name": "beta", "address": "127.0.0.1:44401", "bank_code": "BETAXX02"},
  "merchant": {"name": "shop", "address": "127.0.0.1:51639"},
  "account_id": "go-buyer-current",
  "currency": "EUR",
  "instruments": {
    "card": {"kind": "INSTRUMENT_KIND_CARD", "bank_code": "BETAXX02", "number": "4000009999999999"},
    "account": {"kind": "INSTRUMENT_KIND_BANK_ACCOUNT", "bank_code": "BETAXX02", "number": "DE00123456789"}
  }
}`

func TestLoadResolvesRelativePathsAndHidesNumbers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "go.json")
	if err := os.WriteFile(path, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "pki", "ca.crt"); p.CACert != want {
		t.Errorf("ca_cert: got %s want %s", p.CACert, want)
	}
	if p.Key != "/abs/key.pem" {
		t.Errorf("an absolute key path changed: %s", p.Key)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if printed := fmt.Sprintf(format, p.Instruments); strings.Contains(printed, "4000009999999999") || strings.Contains(printed, "DE00123456789") {
			t.Errorf("%s of the instruments prints a number: %s", format, printed)
		}
	}
	for name, kind := range map[string]interbankv1.InstrumentKind{
		"card":    interbankv1.InstrumentKind_INSTRUMENT_KIND_CARD,
		"account": interbankv1.InstrumentKind_INSTRUMENT_KIND_BANK_ACCOUNT,
	} {
		instrument, err := p.Instrument(name)
		if err != nil {
			t.Fatal(err)
		}
		proto, err := instrument.Proto()
		if err != nil || proto.GetKind() != kind || proto.GetBankCode() != "BETAXX02" {
			t.Errorf("%s: got kind %v bank %q (err %v)", name, proto.GetKind(), proto.GetBankCode(), err)
		}
	}
}

func TestLoadReportsMissingFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(path, []byte(`{"customer": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.Load(path); err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("Load of an incomplete profile: %v", err)
	}
}
