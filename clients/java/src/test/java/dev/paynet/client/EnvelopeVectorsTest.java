package dev.paynet.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.protobuf.util.JsonFormat;
import interbank.v1.Common.PaymentInstruction;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The envelope against clients/vectors/envelope.json, without any network. */
class EnvelopeVectorsTest {
    private static final HexFormat HEX = HexFormat.of();

    private static PaymentInstruction vectorInstruction() throws Exception {
        PaymentInstruction.Builder builder = PaymentInstruction.newBuilder();
        JsonFormat.parser().merge(Vectors.json().getAsJsonObject("instruction").toString(), builder);
        return builder.build();
    }

    @Test
    void orderDigestMatchesTextAndHash() {
        JsonObject order = Vectors.json().getAsJsonObject("order");
        List<Envelope.DigestLine> lines = new ArrayList<>();
        for (JsonElement element : order.getAsJsonArray("lines")) {
            JsonObject line = element.getAsJsonObject();
            lines.add(new Envelope.DigestLine(line.get("sku").getAsString(), line.get("quantity").getAsLong(),
                    line.get("unit_price_minor").getAsLong()));
        }
        String text = Envelope.orderDigestText(order.get("order_id").getAsString(),
                order.get("merchant_name").getAsString(), order.get("customer_name").getAsString(),
                order.get("currency_code").getAsString(), order.get("total_minor").getAsLong(), lines);
        assertEquals(Vectors.string("order_digest_text"), text);
        assertArrayEquals(Vectors.hex("order_digest"), Envelope.orderDigest(text));
    }

    @Test
    void instructionSerializesToInstructionBytes() throws Exception {
        assertEquals(Vectors.string("instruction_bytes"), HEX.formatHex(vectorInstruction().toByteArray()));
    }

    @Test
    void hpkeInfoIsPrefixAndDigest() {
        assertEquals(Vectors.string("hpke_info"), HEX.formatHex(Envelope.hpkeInfo(Vectors.hex("order_digest"))));
        JsonObject suite = Vectors.json().getAsJsonObject("hpke_suite");
        assertEquals(0x0020, suite.get("kem_id").getAsInt());
        assertEquals(0x0001, suite.get("kdf_id").getAsInt());
        assertEquals(0x0001, suite.get("aead_id").getAsInt());
        assertEquals(0, suite.get("mode").getAsInt());
        assertEquals("", Vectors.string("hpke_aad"));
    }

    @Test
    void dualSignatureIsDeterministicEd25519() {
        byte[] digest = Vectors.hex("order_digest");
        byte[] instructionBytes = Vectors.hex("instruction_bytes");
        assertEquals(Vectors.string("dual_signature_message"),
                HEX.formatHex(Envelope.dualSignatureMessage(digest, instructionBytes)));
        PrivateKey fromSeed = Envelope.ed25519PrivateKeyFromSeed(Vectors.hex("signing_private_key"));
        assertEquals(Vectors.string("dual_signature"), HEX.formatHex(Envelope.signDual(fromSeed, digest, instructionBytes)));
        PrivateKey fromPem = Envelope.ed25519PrivateKeyFromPem(Vectors.string("signing_private_key_pem"));
        assertEquals(Vectors.string("dual_signature"), HEX.formatHex(Envelope.signDual(fromPem, digest, instructionBytes)));
        assertTrue(Envelope.verifyDual(Vectors.hex("signing_public_key"), digest, instructionBytes,
                Vectors.hex("dual_signature")));
        byte[] tampered = instructionBytes.clone();
        tampered[0] ^= 1;
        assertFalse(Envelope.verifyDual(Vectors.hex("signing_public_key"), digest, tampered,
                Vectors.hex("dual_signature")));
    }

    @Test
    void sealedInstructionOpensWithGatewayKey() throws Exception {
        byte[] opened = Envelope.openInstruction(Vectors.hex("gateway_private_key"), Vectors.hex("order_digest"),
                Vectors.hex("sealed_instruction"));
        assertEquals(Vectors.string("instruction_bytes"), HEX.formatHex(opened));
        byte[] fromPem = Envelope.x25519PrivateKeyFromPem(Vectors.string("gateway_private_key_pem"));
        assertArrayEquals(Vectors.hex("gateway_private_key"), fromPem);
    }

    @Test
    void sealedInstructionDoesNotOpenForWrongDigest() {
        assertThrows(InstructionUnreadableException.class, () -> Envelope.openInstruction(
                Vectors.hex("gateway_private_key"), Vectors.hex("wrong_order_digest"), Vectors.hex("sealed_instruction")));
    }

    @Test
    void tamperedSealedInstructionDoesNotOpen() {
        byte[] sealed = Vectors.hex("sealed_instruction");
        sealed[sealed.length - 1] ^= 1;
        assertThrows(InstructionUnreadableException.class, () -> Envelope.openInstruction(
                Vectors.hex("gateway_private_key"), Vectors.hex("order_digest"), sealed));
    }

    @Test
    void freshSealOpensAgain() throws Exception {
        byte[] digest = Vectors.hex("order_digest");
        byte[] instructionBytes = Vectors.hex("instruction_bytes");
        byte[] sealed = Envelope.sealInstruction(Vectors.hex("gateway_public_key"), digest, instructionBytes);
        assertEquals(Envelope.ENC_LENGTH + instructionBytes.length + Envelope.TAG_LENGTH, sealed.length);
        assertArrayEquals(instructionBytes, Envelope.openInstruction(Vectors.hex("gateway_private_key"), digest, sealed));
        byte[] again = Envelope.sealInstruction(Vectors.hex("gateway_public_key"), digest, instructionBytes);
        assertFalse(HEX.formatHex(sealed).equals(HEX.formatHex(again)), "every sealing uses a fresh ephemeral key");
    }

    @Test
    void sealAndSignUsesTheInstructionsOwnDigest() throws Exception {
        PaymentInstruction instruction = vectorInstruction();
        Envelope.Sealed sealed = Envelope.sealAndSign(instruction, Vectors.hex("gateway_public_key"),
                Envelope.ed25519PrivateKeyFromSeed(Vectors.hex("signing_private_key")));
        assertEquals(Vectors.string("instruction_bytes"), HEX.formatHex(sealed.instructionBytes()));
        assertEquals(Vectors.string("dual_signature"), HEX.formatHex(sealed.dualSignature()));
        assertArrayEquals(sealed.instructionBytes(), Envelope.openInstruction(Vectors.hex("gateway_private_key"),
                Vectors.hex("order_digest"), sealed.sealedInstruction()));
    }
}
