package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paynet/paynet/clients/go/envelope"
)

// vectorFields are the parts of clients/vectors/envelope.json the tool needs.
type vectorFields struct {
	Instruction          json.RawMessage `json:"instruction"`
	InstructionBytes     string          `json:"instruction_bytes"`
	OrderDigest          string          `json:"order_digest"`
	WrongOrderDigest     string          `json:"wrong_order_digest"`
	GatewayPublicKey     string          `json:"gateway_public_key"`
	GatewayPrivateKeyPEM string          `json:"gateway_private_key_pem"`
	SealedInstruction    string          `json:"sealed_instruction"`
	SigningPrivateKeyPEM string          `json:"signing_private_key_pem"`
	SigningPublicKey     string          `json:"signing_public_key"`
	DualSignature        string          `json:"dual_signature"`
}

func loadVectors(t *testing.T) vectorFields {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "vectors", "envelope.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFields
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func call(t *testing.T, command string, request any) ([]byte, error) {
	t.Helper()
	input, err := json.Marshal(request)
	if err != nil {
		t.Fatal(err)
	}
	return run(command, bytes.NewReader(input))
}

func TestSealThenOpenRoundTrips(t *testing.T) {
	v := loadVectors(t)
	out, err := call(t, "seal", map[string]any{
		"gateway_public_key": v.GatewayPublicKey,
		"signing_key_pem":    v.SigningPrivateKeyPEM,
		"instruction":        v.Instruction,
	})
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	var sealed sealResponse
	if err := json.Unmarshal(out, &sealed); err != nil {
		t.Fatal(err)
	}
	if sealed.InstructionBytes != v.InstructionBytes || sealed.DualSignature != v.DualSignature {
		t.Error("seal: instruction bytes or dual signature differ from the vectors")
	}

	request := openRequest{
		GatewayPrivateKeyPEM: v.GatewayPrivateKeyPEM,
		OrderDigest:          v.OrderDigest,
		SealedInstruction:    sealed.SealedInstruction,
		DualSignature:        sealed.DualSignature,
		SigningPublicKey:     v.SigningPublicKey,
	}
	out, err = call(t, "open", request)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var opened openResponse
	if err := json.Unmarshal(out, &opened); err != nil {
		t.Fatal(err)
	}
	if opened.InstructionBytes != v.InstructionBytes || !opened.SignatureValid {
		t.Errorf("open: bytes match %v, signature valid %v", opened.InstructionBytes == v.InstructionBytes, opened.SignatureValid)
	}
	var got, want any
	json.Unmarshal(opened.Instruction, &got)
	json.Unmarshal(v.Instruction, &want)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("open: instruction JSON\n got %s\nwant %s", gotJSON, wantJSON)
	}

	forged := request
	forged.DualSignature = "00" + sealed.DualSignature[2:]
	out, err = call(t, "open", forged)
	if err != nil {
		t.Fatalf("open with a forged signature: %v", err)
	}
	if err := json.Unmarshal(out, &opened); err != nil || opened.SignatureValid {
		t.Errorf("open with a forged signature: signature_valid %v (err %v)", opened.SignatureValid, err)
	}
}

func TestOpenVectorAndRefuseWrongDigest(t *testing.T) {
	v := loadVectors(t)
	request := openRequest{
		GatewayPrivateKeyPEM: v.GatewayPrivateKeyPEM,
		OrderDigest:          v.OrderDigest,
		SealedInstruction:    v.SealedInstruction,
		DualSignature:        v.DualSignature,
		SigningPublicKey:     v.SigningPublicKey,
	}
	if _, err := call(t, "open", request); err != nil {
		t.Fatalf("open the vector: %v", err)
	}
	request.OrderDigest = v.WrongOrderDigest
	out, err := call(t, "open", request)
	if !errors.Is(err, envelope.ErrUnreadable) {
		t.Fatalf("open for the wrong digest: got %v, want ErrUnreadable", err)
	}
	if strings.Contains(string(out)+err.Error(), v.InstructionBytes) {
		t.Error("the refusal leaks the instruction bytes")
	}
}

func TestBadInputIsNotUnreadable(t *testing.T) {
	v := loadVectors(t)
	for name, request := range map[string]string{
		"not JSON":    "{",
		"bad hex":     `{"gateway_public_key": "zz", "signing_key_pem": "", "instruction": {}}`,
		"no PEM":      `{"gateway_public_key": "` + v.GatewayPublicKey + `", "signing_key_pem": "x", "instruction": {}}`,
		"bad digest":  `{"gateway_private_key_pem": ` + quote(v.GatewayPrivateKeyPEM) + `, "order_digest": "00"}`,
		"bad message": `{"gateway_public_key": "` + v.GatewayPublicKey + `", "signing_key_pem": ` + quote(v.SigningPrivateKeyPEM) + `, "instruction": {"nonce": 5}}`,
	} {
		command := "seal"
		if name == "bad digest" {
			command = "open"
		}
		_, err := run(command, strings.NewReader(request))
		var bad badInput
		if !errors.As(err, &bad) {
			t.Errorf("%s: got %v, want bad input", name, err)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
