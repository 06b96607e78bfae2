package dev.paynet.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The envelope tool's JSON protocol, in process. */
class EnvelopeToolTest {
    private record Result(int exitCode, String stdout, String stderr) {}

    private static Result run(String command, String stdin) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = EnvelopeTool.run(new String[] {command},
                new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static JsonObject openRequest(String sealedHex, String digestHex, String signatureHex) {
        JsonObject request = new JsonObject();
        request.addProperty("gateway_private_key_pem", Vectors.string("gateway_private_key_pem"));
        request.addProperty("order_digest", digestHex);
        request.addProperty("sealed_instruction", sealedHex);
        request.addProperty("dual_signature", signatureHex);
        request.addProperty("signing_public_key", Vectors.string("signing_public_key"));
        return request;
    }

    @Test
    void vectorOpens() {
        Result result = run("open", openRequest(Vectors.string("sealed_instruction"), Vectors.string("order_digest"),
                Vectors.string("dual_signature")).toString());
        assertEquals(0, result.exitCode(), result.stderr());
        JsonObject answer = JsonParser.parseString(result.stdout()).getAsJsonObject();
        assertEquals(Vectors.string("instruction_bytes"), answer.get("instruction_bytes").getAsString());
        assertEquals(Vectors.json().getAsJsonObject("instruction"), answer.getAsJsonObject("instruction"));
        assertTrue(answer.get("signature_valid").getAsBoolean());
    }

    @Test
    void sealThenOpenRoundTrips() {
        JsonObject seal = new JsonObject();
        seal.addProperty("gateway_public_key", Vectors.string("gateway_public_key"));
        seal.addProperty("signing_key_pem", Vectors.string("signing_private_key_pem"));
        seal.add("instruction", Vectors.json().getAsJsonObject("instruction"));
        Result sealed = run("seal", seal.toString());
        assertEquals(0, sealed.exitCode(), sealed.stderr());
        JsonObject answer = JsonParser.parseString(sealed.stdout()).getAsJsonObject();
        assertEquals(Vectors.string("instruction_bytes"), answer.get("instruction_bytes").getAsString());
        assertEquals(Vectors.string("dual_signature"), answer.get("dual_signature").getAsString());

        Result opened = run("open", openRequest(answer.get("sealed_instruction").getAsString(),
                Vectors.string("order_digest"), answer.get("dual_signature").getAsString()).toString());
        assertEquals(0, opened.exitCode(), opened.stderr());
        assertTrue(JsonParser.parseString(opened.stdout()).getAsJsonObject().get("signature_valid").getAsBoolean());
    }

    @Test
    void wrongDigestIsUnreadable() {
        Result result = run("open", openRequest(Vectors.string("sealed_instruction"),
                Vectors.string("wrong_order_digest"), Vectors.string("dual_signature")).toString());
        assertEquals(3, result.exitCode());
        assertTrue(result.stderr().startsWith("INSTRUCTION_UNREADABLE: "), result.stderr());
        assertEquals("", result.stdout());
    }

    @Test
    void wrongSignatureIsReportedInvalid() {
        String signature = Vectors.string("dual_signature");
        String flipped = (signature.charAt(0) == '0' ? "1" : "0") + signature.substring(1);
        Result result = run("open", openRequest(Vectors.string("sealed_instruction"), Vectors.string("order_digest"),
                flipped).toString());
        assertEquals(0, result.exitCode(), result.stderr());
        assertFalse(JsonParser.parseString(result.stdout()).getAsJsonObject().get("signature_valid").getAsBoolean());
    }

    @Test
    void badInputExitsTwoWithoutEchoingSecrets() {
        assertEquals(2, run("open", "not json").exitCode());
        assertEquals(2, run("frobnicate", "{}").exitCode());
        JsonObject seal = new JsonObject();
        seal.addProperty("gateway_public_key", "zz");
        seal.addProperty("signing_key_pem", Vectors.string("signing_private_key_pem"));
        seal.add("instruction", Vectors.json().getAsJsonObject("instruction"));
        Result result = run("seal", seal.toString());
        assertEquals(2, result.exitCode());
        assertFalse(result.stderr().contains("PRIVATE KEY"));
        assertFalse(result.stderr().contains("4000001234567899"));
    }
}
