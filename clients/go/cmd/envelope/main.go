// Command envelope seals and opens paynet payment instructions, speaking the
// JSON protocol of clients/README.md on stdin and stdout:
//
//	envelope seal < {"gateway_public_key", "signing_key_pem", "instruction"}
//	  > {"instruction_bytes", "sealed_instruction", "dual_signature"}
//	envelope open < {"gateway_private_key_pem", "order_digest",
//	                 "sealed_instruction", "dual_signature", "signing_public_key"}
//	  > {"instruction_bytes", "instruction", "signature_valid"}
//
// Hex is lowercase; "instruction" is the proto3 JSON of
// interbank.v1.PaymentInstruction. Exit status: 0 on success, 2 on bad input
// (usage, JSON, hex, keys), 3 when the sealed instruction cannot be opened
// (stderr then starts with "INSTRUCTION_UNREADABLE: "). Error messages never
// carry keys or instruction contents.
package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/paynet/paynet/clients/go/envelope"
	interbankv1 "github.com/paynet/paynet/clients/go/gen/interbank/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Exit codes of the protocol.
const (
	exitBadInput   = 2
	exitUnreadable = 3
)

// sealRequest is the input of "seal".
type sealRequest struct {
	GatewayPublicKey string          `json:"gateway_public_key"`
	SigningKeyPEM    string          `json:"signing_key_pem"`
	Instruction      json.RawMessage `json:"instruction"`
}

// sealResponse is the output of "seal".
type sealResponse struct {
	InstructionBytes  string `json:"instruction_bytes"`
	SealedInstruction string `json:"sealed_instruction"`
	DualSignature     string `json:"dual_signature"`
}

// openRequest is the input of "open".
type openRequest struct {
	GatewayPrivateKeyPEM string `json:"gateway_private_key_pem"`
	OrderDigest          string `json:"order_digest"`
	SealedInstruction    string `json:"sealed_instruction"`
	DualSignature        string `json:"dual_signature"`
	SigningPublicKey     string `json:"signing_public_key"`
}

// openResponse is the output of "open".
type openResponse struct {
	InstructionBytes string          `json:"instruction_bytes"`
	Instruction      json.RawMessage `json:"instruction"`
	SignatureValid   bool            `json:"signature_valid"`
}

// badInput is an error in the request (exit 2).
type badInput struct{ msg string }

func (e badInput) Error() string { return e.msg }

func badf(format string, args ...any) error { return badInput{fmt.Sprintf(format, args...)} }

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "seal" && os.Args[1] != "open") {
		fmt.Fprintln(os.Stderr, "usage: envelope seal|open < request.json > response.json")
		os.Exit(exitBadInput)
	}
	out, err := run(os.Args[1], os.Stdin)
	switch {
	case errors.Is(err, envelope.ErrUnreadable):
		fmt.Fprintf(os.Stderr, "INSTRUCTION_UNREADABLE: %v\n", err)
		os.Exit(exitUnreadable)
	case err != nil:
		fmt.Fprintf(os.Stderr, "envelope %s: %v\n", os.Args[1], err)
		os.Exit(exitBadInput)
	}
	os.Stdout.Write(append(out, '\n'))
}

// run handles one request; the returned error is either bad input or wraps
// envelope.ErrUnreadable.
func run(command string, stdin io.Reader) ([]byte, error) {
	input, err := io.ReadAll(stdin)
	if err != nil {
		return nil, badf("read stdin: %v", err)
	}
	decoder := json.NewDecoder(bytes.NewReader(input))
	if command == "seal" {
		var req sealRequest
		if err := decoder.Decode(&req); err != nil {
			return nil, badf("request is not the seal JSON object: %v", err)
		}
		return seal(req)
	}
	var req openRequest
	if err := decoder.Decode(&req); err != nil {
		return nil, badf("request is not the open JSON object: %v", err)
	}
	return open(req)
}

// unhex decodes a hex field, optionally of a fixed size (size < 0: any).
func unhex(field, value string, size int) ([]byte, error) {
	data, err := hex.DecodeString(value)
	if err != nil {
		return nil, badf("%s is not hex", field)
	}
	if size >= 0 && len(data) != size {
		return nil, badf("%s is %d bytes, want %d", field, len(data), size)
	}
	return data, nil
}

func seal(req sealRequest) ([]byte, error) {
	gatewayKey, err := unhex("gateway_public_key", req.GatewayPublicKey, 32)
	if err != nil {
		return nil, err
	}
	signingKey, err := envelope.ParseSigningKeyPEM([]byte(req.SigningKeyPEM))
	if err != nil {
		return nil, badf("signing_key_pem: %v", err)
	}
	if len(req.Instruction) == 0 {
		return nil, badf("instruction is missing")
	}
	var instruction interbankv1.PaymentInstruction
	if err := protojson.Unmarshal(req.Instruction, &instruction); err != nil {
		return nil, badf("instruction is not the proto3 JSON of a PaymentInstruction")
	}
	if len(instruction.GetOrderDigest()) != envelope.DigestSize {
		return nil, badf("instruction orderDigest is %d bytes, want %d", len(instruction.GetOrderDigest()), envelope.DigestSize)
	}
	sealed, err := envelope.SealPayment(&instruction, gatewayKey, "", signingKey)
	if err != nil {
		return nil, badf("%v", err)
	}
	return json.Marshal(sealResponse{
		InstructionBytes:  hex.EncodeToString(sealed.InstructionBytes),
		SealedInstruction: hex.EncodeToString(sealed.Payment.GetSealedInstruction()),
		DualSignature:     hex.EncodeToString(sealed.Payment.GetDualSignature()),
	})
}

func open(req openRequest) ([]byte, error) {
	gatewayKey, err := envelope.ParseGatewayPrivateKeyPEM([]byte(req.GatewayPrivateKeyPEM))
	if err != nil {
		return nil, badf("gateway_private_key_pem: %v", err)
	}
	digest, err := unhex("order_digest", req.OrderDigest, envelope.DigestSize)
	if err != nil {
		return nil, err
	}
	sealed, err := unhex("sealed_instruction", req.SealedInstruction, -1)
	if err != nil {
		return nil, err
	}
	signature, err := unhex("dual_signature", req.DualSignature, -1)
	if err != nil {
		return nil, err
	}
	public, err := unhex("signing_public_key", req.SigningPublicKey, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	data, err := envelope.OpenInstruction(gatewayKey, digest, sealed)
	if err != nil {
		return nil, err
	}
	var instruction interbankv1.PaymentInstruction
	if err := proto.Unmarshal(data, &instruction); err != nil {
		return nil, fmt.Errorf("%w: the opened bytes are not a PaymentInstruction", envelope.ErrUnreadable)
	}
	instructionJSON, err := protojson.Marshal(&instruction)
	if err != nil {
		return nil, fmt.Errorf("encode the instruction as JSON: %w", err)
	}
	return json.Marshal(openResponse{
		InstructionBytes: hex.EncodeToString(data),
		Instruction:      instructionJSON,
		SignatureValid:   envelope.VerifyDual(public, signature, digest, data),
	})
}
