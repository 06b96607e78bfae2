package dev.paynet.client;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import interbank.v1.Common.PaymentInstruction;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * The envelope tool of clients/README.md: reads one JSON object on stdin,
 * writes one JSON object on stdout.
 *
 * <ul>
 *   <li>{@code seal}: {@code {"gateway_public_key", "signing_key_pem", "instruction"}} to
 *       {@code {"instruction_bytes", "sealed_instruction", "dual_signature"}};</li>
 *   <li>{@code open}: {@code {"gateway_private_key_pem", "order_digest", "sealed_instruction",
 *       "dual_signature", "signing_public_key"}} to
 *       {@code {"instruction_bytes", "instruction", "signature_valid"}}.</li>
 * </ul>
 *
 * <p>Exit codes: 0 done; 2 bad input (message on stderr); 3 the instruction
 * cannot be opened ({@code INSTRUCTION_UNREADABLE: <why>} on stderr). Hex is
 * lowercase. Error messages never echo keys or instruction contents.
 *
 * <p>Run it as {@code java -jar target/paynet-client.jar seal|open < input.json}.
 */
public final class EnvelopeTool {
    /** Exit code: success. */
    public static final int OK = 0;
    /** Exit code: bad input. */
    public static final int BAD_INPUT = 2;
    /** Exit code: the sealed instruction cannot be opened. */
    public static final int UNREADABLE = 3;

    private static final HexFormat HEX = HexFormat.of();
    private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    private EnvelopeTool() {}

    /**
     * Entry point.
     *
     * @param args {@code seal} or {@code open}
     */
    public static void main(String[] args) {
        System.exit(run(args, System.in, System.out, System.err));
    }

    /**
     * Runs the tool on the given streams.
     *
     * @param args {@code seal} or {@code open}
     * @param in the JSON request
     * @param out where the JSON answer goes
     * @param err where errors go
     * @return the exit code
     */
    public static int run(String[] args, InputStream in, PrintStream out, PrintStream err) {
        if (args.length != 1 || !(args[0].equals("seal") || args[0].equals("open"))) {
            err.println("usage: java -jar paynet-client.jar seal|open < request.json");
            return BAD_INPUT;
        }
        try {
            JsonObject request = readRequest(in);
            JsonObject answer = args[0].equals("seal") ? seal(request) : open(request);
            out.println(GSON.toJson(answer));
            out.flush();
            return OK;
        } catch (BadInputException e) {
            err.println("bad input: " + e.getMessage());
            return BAD_INPUT;
        } catch (InstructionUnreadableException e) {
            err.println("INSTRUCTION_UNREADABLE: " + e.getMessage());
            return UNREADABLE;
        }
    }

    private static JsonObject seal(JsonObject request) throws BadInputException {
        byte[] gatewayPublicKey = hex(request, "gateway_public_key", 32);
        String signingKeyPem = string(request, "signing_key_pem");
        JsonElement instructionJson = request.get("instruction");
        if (instructionJson == null || !instructionJson.isJsonObject()) {
            throw new BadInputException("\"instruction\" must be the proto3 JSON object of a PaymentInstruction");
        }
        PaymentInstruction.Builder builder = PaymentInstruction.newBuilder();
        try {
            JsonFormat.parser().merge(GSON.toJson(instructionJson), builder);
        } catch (InvalidProtocolBufferException | RuntimeException e) {
            throw new BadInputException("\"instruction\" is not a valid PaymentInstruction in proto3 JSON");
        }
        PaymentInstruction instruction = builder.build();
        if (instruction.getOrderDigest().size() != Envelope.DIGEST_LENGTH) {
            throw new BadInputException("the instruction's orderDigest must be 32 bytes");
        }
        Envelope.Sealed sealed;
        try {
            sealed = Envelope.sealAndSign(instruction, gatewayPublicKey, Envelope.ed25519PrivateKeyFromPem(signingKeyPem));
        } catch (IllegalArgumentException e) {
            throw new BadInputException(e.getMessage());
        }
        JsonObject answer = new JsonObject();
        answer.addProperty("instruction_bytes", HEX.formatHex(sealed.instructionBytes()));
        answer.addProperty("sealed_instruction", HEX.formatHex(sealed.sealedInstruction()));
        answer.addProperty("dual_signature", HEX.formatHex(sealed.dualSignature()));
        return answer;
    }

    private static JsonObject open(JsonObject request) throws BadInputException, InstructionUnreadableException {
        byte[] orderDigest = hex(request, "order_digest", Envelope.DIGEST_LENGTH);
        byte[] sealedInstruction = hex(request, "sealed_instruction", -1);
        byte[] dualSignature = hex(request, "dual_signature", -1);
        byte[] signingPublicKey = hex(request, "signing_public_key", 32);
        byte[] gatewayPrivateKey;
        try {
            gatewayPrivateKey = Envelope.x25519PrivateKeyFromPem(string(request, "gateway_private_key_pem"));
        } catch (IllegalArgumentException e) {
            throw new BadInputException("\"gateway_private_key_pem\": " + e.getMessage());
        }
        byte[] instructionBytes = Envelope.openInstruction(gatewayPrivateKey, orderDigest, sealedInstruction);
        PaymentInstruction instruction;
        String instructionJson;
        try {
            instruction = PaymentInstruction.parseFrom(instructionBytes);
            instructionJson = JsonFormat.printer().print(instruction);
        } catch (InvalidProtocolBufferException e) {
            throw new InstructionUnreadableException("the opened bytes are not a PaymentInstruction", e);
        }
        JsonObject answer = new JsonObject();
        answer.addProperty("instruction_bytes", HEX.formatHex(instructionBytes));
        answer.add("instruction", JsonParser.parseString(instructionJson));
        answer.addProperty("signature_valid",
                Envelope.verifyDual(signingPublicKey, orderDigest, instructionBytes, dualSignature));
        return answer;
    }

    private static JsonObject readRequest(InputStream in) throws BadInputException {
        String text;
        try {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new BadInputException("cannot read stdin");
        }
        try {
            JsonElement json = JsonParser.parseString(text);
            if (!json.isJsonObject()) {
                throw new BadInputException("stdin must hold one JSON object");
            }
            return json.getAsJsonObject();
        } catch (RuntimeException e) {
            throw new BadInputException("stdin is not valid JSON");
        }
    }

    private static String string(JsonObject request, String field) throws BadInputException {
        JsonElement value = request.get(field);
        if (value == null || !value.isJsonPrimitive() || !value.getAsJsonPrimitive().isString()) {
            throw new BadInputException("\"" + field + "\" must be a string");
        }
        return value.getAsString();
    }

    private static byte[] hex(JsonObject request, String field, int length) throws BadInputException {
        byte[] bytes;
        try {
            bytes = HEX.parseHex(string(request, field));
        } catch (IllegalArgumentException e) {
            throw new BadInputException("\"" + field + "\" is not hex");
        }
        if (length >= 0 && bytes.length != length) {
            throw new BadInputException("\"" + field + "\" must be " + length + " bytes, got " + bytes.length);
        }
        return bytes;
    }

    /** Input the tool cannot use; exit code 2. */
    private static final class BadInputException extends Exception {
        private static final long serialVersionUID = 1L;

        BadInputException(String message) {
            super(message);
        }
    }
}
