// Package profile loads a paynet client profile (the JSON printed by
// `paynet client-profile` or `python -m ops.clientnet`) and opens
// mutual-TLS gRPC connections with the customer's certificate.
package profile

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/paynet/paynet/clients/go/envelope"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// EnvVar names the environment variable holding the profile's path.
const EnvVar = "PAYNET_PROFILE"

// Node is a network node the customer talks to.
type Node struct {
	// Name is the node's name in the network, for example "beta" or "shop".
	Name string `json:"name"`
	// Address is host:port of its gRPC server.
	Address string `json:"address"`
	// BankCode is the bank's code; empty for a merchant.
	BankCode string `json:"bank_code,omitempty"`
}

// Instrument is one of the customer's payment instruments.
type Instrument struct {
	// Kind is the InstrumentKind's name, for example "INSTRUMENT_KIND_CARD".
	Kind string `json:"kind"`
	// BankCode is the issuing bank's code; the gateway routes on it.
	BankCode string `json:"bank_code"`
	// Number is the card PAN or account number. Secret: never print it.
	Number string `json:"number"`
}

// String hides the instrument number so that printing an Instrument is safe.
func (i Instrument) String() string {
	return fmt.Sprintf("%s at %s (number hidden)", i.Kind, i.BankCode)
}

// GoString hides the instrument number from %#v too.
func (i Instrument) GoString() string { return i.String() }

// Proto returns the instrument as a PaymentInstrument for an instruction.
func (i Instrument) Proto() (*interbankv1.PaymentInstrument, error) {
	kind, ok := interbankv1.InstrumentKind_value[i.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown instrument kind %q", i.Kind)
	}
	return &interbankv1.PaymentInstrument{
		Kind:     interbankv1.InstrumentKind(kind),
		BankCode: i.BankCode,
		Number:   i.Number,
	}, nil
}

// Profile is everything a customer's client needs to buy on the network.
type Profile struct {
	// Customer is the customer's name (its certificate's identity).
	Customer string `json:"customer"`
	// CACert is the path of the network CA certificate (PEM).
	CACert string `json:"ca_cert"`
	// Cert is the path of the customer's TLS certificate (PEM).
	Cert string `json:"cert"`
	// Key is the path of the customer's TLS private key (EC P-256, PKCS#8 PEM).
	Key string `json:"key"`
	// SigningKey is the path of the customer's Ed25519 dual-signature key (PKCS#8 PEM).
	SigningKey string `json:"signing_key"`
	// Bank is the customer's bank: balances, device inbox, challenge answers.
	Bank Node `json:"bank"`
	// Merchant is the shop the customer buys from.
	Merchant Node `json:"merchant"`
	// AccountID is the public id of the customer's account at its bank.
	AccountID string `json:"account_id"`
	// Currency is the network's ISO 4217 currency code.
	Currency string `json:"currency"`
	// Instruments holds the customer's "card" and "account" instruments.
	Instruments map[string]Instrument `json:"instruments"`
}

// Load reads the profile at path. Relative file paths inside it are taken
// relative to the profile's directory.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("parse profile %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, file := range []*string{&p.CACert, &p.Cert, &p.Key, &p.SigningKey} {
		if *file != "" && !filepath.IsAbs(*file) {
			*file = filepath.Join(dir, *file)
		}
	}
	var missing []string
	for _, field := range []struct{ name, value string }{
		{"customer", p.Customer}, {"ca_cert", p.CACert}, {"cert", p.Cert}, {"key", p.Key},
		{"signing_key", p.SigningKey}, {"bank.address", p.Bank.Address},
		{"merchant.address", p.Merchant.Address}, {"account_id", p.AccountID},
	} {
		if field.value == "" {
			missing = append(missing, field.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("profile %s lacks %v", path, missing)
	}
	return &p, nil
}

// LoadFromEnv loads the profile named by $PAYNET_PROFILE.
func LoadFromEnv() (*Profile, error) {
	path := os.Getenv(EnvVar)
	if path == "" {
		return nil, errors.New(EnvVar + " is not set")
	}
	return Load(path)
}

// Instrument returns the instrument named name ("card" or "account").
func (p *Profile) Instrument(name string) (Instrument, error) {
	instrument, ok := p.Instruments[name]
	if !ok {
		return Instrument{}, fmt.Errorf("profile has no %q instrument", name)
	}
	return instrument, nil
}

// TLSConfig is the customer's mutual-TLS configuration: its certificate as the
// client certificate, servers verified against the network CA only (TLS 1.3).
// The server name is set by gRPC from the dialed address.
func (p *Profile) TLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return nil, fmt.Errorf("load the customer's TLS certificate and key: %w", err)
	}
	caPEM, err := os.ReadFile(p.CACert)
	if err != nil {
		return nil, fmt.Errorf("read the network CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in the network CA file %s", p.CACert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// Dial opens a mutual-TLS gRPC client connection to address (host:port) with
// the customer's certificate. The connection is lazy: the first call connects.
func (p *Profile) Dial(address string, options ...grpc.DialOption) (*grpc.ClientConn, error) {
	config, err := p.TLSConfig()
	if err != nil {
		return nil, err
	}
	options = append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))}, options...)
	conn, err := grpc.NewClient(address, options...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	return conn, nil
}

// LoadSigningKey reads the customer's Ed25519 dual-signature key.
func (p *Profile) LoadSigningKey() (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(p.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return envelope.ParseSigningKeyPEM(data)
}
