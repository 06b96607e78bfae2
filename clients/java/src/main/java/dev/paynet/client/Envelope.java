package dev.paynet.client;

import interbank.v1.Common.PaymentInstruction;
import interbank.v1.OrderOuterClass.Order;
import interbank.v1.OrderOuterClass.OrderLine;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.XECPrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.bouncycastle.crypto.AsymmetricCipherKeyPair;
import org.bouncycastle.crypto.InvalidCipherTextException;
import org.bouncycastle.crypto.hpke.HPKE;
import org.bouncycastle.crypto.params.AsymmetricKeyParameter;
import org.bouncycastle.crypto.params.X25519PrivateKeyParameters;

/**
 * The paynet payment envelope (docs/envelope.md): the order digest, HPKE
 * sealing of the instruction bytes to the gateway, and the customer's Ed25519
 * dual signature.
 *
 * <p>All methods are stateless and thread-safe. Nothing here logs or puts key
 * material, instrument numbers or plaintext into exception messages.
 */
public final class Envelope {
    /** First line of the order's canonical text. */
    public static final String ORDER_DIGEST_HEADER = "interbank.v1.order";
    /** ASCII prefix of the HPKE info, followed by the 32-byte order digest. */
    public static final byte[] HPKE_INFO_PREFIX =
            "interbank.v1 payment instruction".getBytes(StandardCharsets.US_ASCII);
    /** Length of the HPKE encapsulated key (X25519) at the start of a sealed instruction. */
    public static final int ENC_LENGTH = 32;
    /** Length of the AES-128-GCM tag at the end of the ciphertext. */
    public static final int TAG_LENGTH = 16;
    /** Length of an order digest (SHA-256). */
    public static final int DIGEST_LENGTH = 32;
    /** Length of an Ed25519 signature. */
    public static final int SIGNATURE_LENGTH = 64;

    // DER prefixes that wrap raw 32-byte keys into the encodings the JDK reads.
    private static final byte[] ED25519_PKCS8_PREFIX = HexFormat.of().parseHex("302e020100300506032b657004220420");
    private static final byte[] ED25519_SPKI_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

    private Envelope() {}

    /**
     * One line of an order as it enters the digest.
     *
     * @param sku the product's SKU
     * @param quantity units ordered
     * @param unitPriceMinor price of one unit in minor units
     */
    public record DigestLine(String sku, long quantity, long unitPriceMinor) {}

    // ---------------------------------------------------------------- order digest

    /**
     * The canonical UTF-8 text of an order whose SHA-256 is the order digest.
     *
     * @param orderId the order id
     * @param merchantName the merchant's name
     * @param customerName the customer's name
     * @param currencyCode ISO 4217 code of the total
     * @param totalMinor the total in minor units
     * @param lines the order lines, in order
     * @return the text, every line ending with {@code \n}
     */
    public static String orderDigestText(String orderId, String merchantName, String customerName,
            String currencyCode, long totalMinor, List<DigestLine> lines) {
        StringBuilder text = new StringBuilder()
                .append(ORDER_DIGEST_HEADER).append('\n')
                .append(orderId).append('\n')
                .append(merchantName).append('\n')
                .append(customerName).append('\n')
                .append(currencyCode).append('\n')
                .append(totalMinor).append('\n');
        for (DigestLine line : lines) {
            text.append(line.sku()).append(':').append(line.quantity()).append(':')
                    .append(line.unitPriceMinor()).append('\n');
        }
        return text.toString();
    }

    /**
     * The canonical text of an order returned by the merchant.
     *
     * @param order the order (its total's currency is the currency code)
     * @return the text whose SHA-256 is the digest
     */
    public static String orderDigestText(Order order) {
        List<DigestLine> lines = new ArrayList<>();
        for (OrderLine line : order.getLinesList()) {
            lines.add(new DigestLine(line.getSku(), line.getQuantity(), line.getUnitPrice().getAmountMinor()));
        }
        return orderDigestText(order.getOrderId(), order.getMerchantName(), order.getCustomerName(),
                order.getTotal().getCurrencyCode(), order.getTotal().getAmountMinor(), lines);
    }

    /**
     * The SHA-256 of an order digest text.
     *
     * @param text the canonical text from {@link #orderDigestText}
     * @return 32 bytes
     */
    public static byte[] orderDigest(String text) {
        return sha256(text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Recomputes an order's digest from its fields.
     *
     * @param order the order
     * @return 32 bytes; compare with {@code order.getOrderDigest()}
     */
    public static byte[] orderDigest(Order order) {
        return orderDigest(orderDigestText(order));
    }

    /**
     * Whether the order's {@code order_digest} matches its fields.
     *
     * @param order the order from CreateOrder
     * @return true when the digest recomputes to the same 32 bytes
     */
    public static boolean orderDigestMatches(Order order) {
        return MessageDigest.isEqual(orderDigest(order), order.getOrderDigest().toByteArray());
    }

    // ---------------------------------------------------------------- HPKE

    /**
     * The HPKE info: {@code "interbank.v1 payment instruction" || orderDigest}.
     *
     * @param orderDigest the 32-byte order digest
     * @return 64 bytes
     */
    public static byte[] hpkeInfo(byte[] orderDigest) {
        requireLength(orderDigest, DIGEST_LENGTH, "order digest");
        byte[] info = Arrays.copyOf(HPKE_INFO_PREFIX, HPKE_INFO_PREFIX.length + DIGEST_LENGTH);
        System.arraycopy(orderDigest, 0, info, HPKE_INFO_PREFIX.length, DIGEST_LENGTH);
        return info;
    }

    private static HPKE hpke() {
        return new HPKE(HPKE.mode_base, HPKE.kem_X25519_SHA256, HPKE.kdf_HKDF_SHA256, HPKE.aead_AES_GCM128);
    }

    /**
     * Seals instruction bytes to the gateway (HPKE base mode, single shot,
     * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, empty aad).
     *
     * @param gatewayPublicKey the gateway's raw 32-byte X25519 key from CreateOrder
     * @param orderDigest the 32-byte order digest bound into the info
     * @param instructionBytes the serialized PaymentInstruction
     * @return {@code enc (32 bytes) || ciphertext}
     */
    public static byte[] sealInstruction(byte[] gatewayPublicKey, byte[] orderDigest, byte[] instructionBytes) {
        requireLength(gatewayPublicKey, 32, "gateway public key");
        HPKE hpke = hpke();
        AsymmetricKeyParameter recipient = hpke.deserializePublicKey(gatewayPublicKey);
        byte[][] sealed;
        try {
            sealed = hpke.seal(recipient, hpkeInfo(orderDigest), new byte[0], instructionBytes, null, null, null);
        } catch (InvalidCipherTextException e) {
            throw new IllegalStateException("HPKE seal failed", e);
        }
        byte[] ciphertext = sealed[0];
        byte[] enc = sealed[1];
        if (enc.length != ENC_LENGTH) {
            throw new IllegalStateException("unexpected HPKE encapsulation length " + enc.length);
        }
        byte[] out = Arrays.copyOf(enc, ENC_LENGTH + ciphertext.length);
        System.arraycopy(ciphertext, 0, out, ENC_LENGTH, ciphertext.length);
        return out;
    }

    /**
     * Opens a sealed instruction, as the gateway does.
     *
     * @param gatewayPrivateKey the gateway's raw 32-byte X25519 private key
     * @param orderDigest the order digest the instruction must have been sealed for
     * @param sealedInstruction {@code enc || ciphertext}
     * @return the instruction bytes
     * @throws InstructionUnreadableException if it cannot be opened with this key and digest
     */
    public static byte[] openInstruction(byte[] gatewayPrivateKey, byte[] orderDigest, byte[] sealedInstruction)
            throws InstructionUnreadableException {
        requireLength(gatewayPrivateKey, 32, "gateway private key");
        if (sealedInstruction.length < ENC_LENGTH + TAG_LENGTH) {
            throw new InstructionUnreadableException(
                    "sealed instruction is " + sealedInstruction.length + " bytes, shorter than enc and tag", null);
        }
        X25519PrivateKeyParameters privateKey = new X25519PrivateKeyParameters(gatewayPrivateKey, 0);
        HPKE hpke = hpke();
        AsymmetricCipherKeyPair recipient =
                hpke.deserializePrivateKey(gatewayPrivateKey, privateKey.generatePublicKey().getEncoded());
        byte[] enc = Arrays.copyOfRange(sealedInstruction, 0, ENC_LENGTH);
        byte[] ciphertext = Arrays.copyOfRange(sealedInstruction, ENC_LENGTH, sealedInstruction.length);
        try {
            return hpke.open(enc, recipient, hpkeInfo(orderDigest), new byte[0], ciphertext, null, null, null);
        } catch (InvalidCipherTextException | RuntimeException e) {
            throw new InstructionUnreadableException(
                    "HPKE open failed (tampered, other gateway key, or sealed for another order digest)", e);
        }
    }

    // ---------------------------------------------------------------- dual signature

    /**
     * The 64-byte dual-signature message {@code orderDigest || SHA-256(instructionBytes)}.
     *
     * @param orderDigest the 32-byte order digest
     * @param instructionBytes the serialized instruction, exactly as sealed
     * @return 64 bytes
     */
    public static byte[] dualSignatureMessage(byte[] orderDigest, byte[] instructionBytes) {
        requireLength(orderDigest, DIGEST_LENGTH, "order digest");
        byte[] message = Arrays.copyOf(orderDigest, 2 * DIGEST_LENGTH);
        System.arraycopy(sha256(instructionBytes), 0, message, DIGEST_LENGTH, DIGEST_LENGTH);
        return message;
    }

    /**
     * Signs the dual-signature message with the customer's Ed25519 key.
     *
     * @param signingKey the Ed25519 private key enrolled at the customer's bank
     * @param orderDigest the 32-byte order digest
     * @param instructionBytes the instruction bytes, exactly as sealed
     * @return the 64-byte signature
     */
    public static byte[] signDual(PrivateKey signingKey, byte[] orderDigest, byte[] instructionBytes) {
        try {
            Signature signer = Signature.getInstance("Ed25519");
            signer.initSign(signingKey);
            signer.update(dualSignatureMessage(orderDigest, instructionBytes));
            return signer.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("Ed25519 signing failed", e);
        }
    }

    /**
     * Verifies a dual signature, as the issuer does.
     *
     * @param signingPublicKey the customer's raw 32-byte Ed25519 public key
     * @param orderDigest the 32-byte order digest
     * @param instructionBytes the instruction bytes as opened
     * @param signature the 64-byte signature
     * @return true when the signature is valid
     */
    public static boolean verifyDual(byte[] signingPublicKey, byte[] orderDigest, byte[] instructionBytes,
            byte[] signature) {
        if (signature.length != SIGNATURE_LENGTH) {
            return false;
        }
        try {
            Signature verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(ed25519PublicKey(signingPublicKey));
            verifier.update(dualSignatureMessage(orderDigest, instructionBytes));
            return verifier.verify(signature);
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    /**
     * Convenience: serializes an instruction, seals it for its own order digest
     * and signs it.
     *
     * @param instruction the instruction (its order_digest binds the seal)
     * @param gatewayPublicKey the gateway's raw X25519 key
     * @param signingKey the customer's Ed25519 key
     * @return the instruction bytes, sealed instruction and signature
     */
    public static Sealed sealAndSign(PaymentInstruction instruction, byte[] gatewayPublicKey, PrivateKey signingKey) {
        byte[] instructionBytes = instruction.toByteArray();
        byte[] digest = instruction.getOrderDigest().toByteArray();
        return new Sealed(instructionBytes, sealInstruction(gatewayPublicKey, digest, instructionBytes),
                signDual(signingKey, digest, instructionBytes));
    }

    /**
     * The result of {@link #sealAndSign}.
     *
     * @param instructionBytes the serialized instruction (secret: holds the instrument number)
     * @param sealedInstruction {@code enc || ciphertext}
     * @param dualSignature the 64-byte Ed25519 signature
     */
    public record Sealed(byte[] instructionBytes, byte[] sealedInstruction, byte[] dualSignature) {
        @Override
        public String toString() {
            return "Sealed[" + sealedInstruction.length + " sealed bytes]";
        }
    }

    // ---------------------------------------------------------------- keys

    /**
     * Reads an Ed25519 private key from PKCS#8 PEM text.
     *
     * @param pem the PEM text ({@code -----BEGIN PRIVATE KEY-----})
     * @return the key
     * @throws IllegalArgumentException if it is not an Ed25519 PKCS#8 key
     */
    public static PrivateKey ed25519PrivateKeyFromPem(String pem) {
        try {
            return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(pemBody(pem)));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("not an Ed25519 PKCS#8 private key");
        }
    }

    /**
     * An Ed25519 private key from its 32-byte seed (RFC 8032).
     *
     * @param seed 32 bytes
     * @return the key
     */
    public static PrivateKey ed25519PrivateKeyFromSeed(byte[] seed) {
        requireLength(seed, 32, "Ed25519 seed");
        try {
            return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(concat(ED25519_PKCS8_PREFIX, seed)));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("invalid Ed25519 seed");
        }
    }

    /**
     * An Ed25519 public key from its 32 raw bytes.
     *
     * @param raw 32 bytes
     * @return the key
     */
    public static PublicKey ed25519PublicKey(byte[] raw) {
        requireLength(raw, 32, "Ed25519 public key");
        try {
            return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(concat(ED25519_SPKI_PREFIX, raw)));
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("invalid Ed25519 public key");
        }
    }

    /**
     * The raw 32-byte X25519 private key inside PKCS#8 PEM text.
     *
     * @param pem the PEM text
     * @return 32 bytes
     * @throws IllegalArgumentException if it is not an X25519 PKCS#8 key
     */
    public static byte[] x25519PrivateKeyFromPem(String pem) {
        try {
            PrivateKey key = KeyFactory.getInstance("X25519").generatePrivate(new PKCS8EncodedKeySpec(pemBody(pem)));
            return ((XECPrivateKey) key).getScalar()
                    .orElseThrow(() -> new IllegalArgumentException("X25519 key has no scalar"));
        } catch (GeneralSecurityException | ClassCastException e) {
            throw new IllegalArgumentException("not an X25519 PKCS#8 private key");
        }
    }

    private static byte[] pemBody(String pem) {
        StringBuilder body = new StringBuilder();
        for (String line : pem.split("\\R")) {
            String trimmed = line.trim();
            if (!trimmed.isEmpty() && !trimmed.startsWith("-----")) {
                body.append(trimmed);
            }
        }
        if (body.length() == 0) {
            throw new IllegalArgumentException("PEM text holds no key");
        }
        try {
            return Base64.getDecoder().decode(body.toString());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("PEM text is not valid base64");
        }
    }

    // ---------------------------------------------------------------- helpers

    /**
     * SHA-256 of some bytes.
     *
     * @param data the bytes
     * @return 32 bytes
     */
    public static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static void requireLength(byte[] value, int length, String what) {
        if (value == null || value.length != length) {
            throw new IllegalArgumentException(
                    what + " must be " + length + " bytes, got " + (value == null ? "none" : value.length));
        }
    }
}
