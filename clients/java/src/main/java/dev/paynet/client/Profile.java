package dev.paynet.client;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import interbank.v1.Common.InstrumentKind;
import interbank.v1.Common.PaymentInstrument;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;

/**
 * A customer's client profile, as printed by
 * {@code paynet client-profile --network FILE --customer NAME} and written by
 * {@code python -m ops.clientnet}: certificate paths, the bank and merchant
 * addresses, the account and the two payment instruments.
 *
 * <p>{@link #toString()} never shows instrument numbers.
 *
 * @param customer the customer's name
 * @param caCert path of the network CA certificate (PEM)
 * @param cert path of the customer's TLS certificate (PEM)
 * @param key path of the customer's TLS key (EC P-256, PKCS#8 PEM)
 * @param signingKey path of the customer's Ed25519 signing key (PKCS#8 PEM)
 * @param bank the customer's bank
 * @param merchant the merchant to buy from
 * @param accountId the customer's account id at its bank
 * @param currency the network's ISO 4217 currency
 * @param card the card instrument
 * @param account the bank-account instrument
 */
public record Profile(String customer, Path caCert, Path cert, Path key, Path signingKey, Bank bank,
        Merchant merchant, String accountId, String currency, Instrument card, Instrument account) {

    /** The environment variable naming the profile file. */
    public static final String ENV = "PAYNET_PROFILE";

    /**
     * The customer's bank.
     *
     * @param name the node name
     * @param address {@code host:port}
     * @param bankCode the bank's code
     */
    public record Bank(String name, String address, String bankCode) {}

    /**
     * The merchant.
     *
     * @param name the node name
     * @param address {@code host:port}
     */
    public record Merchant(String name, String address) {}

    /**
     * A payment instrument. The number is secret: it is left out of {@link #toString()}.
     *
     * @param kind the instrument kind
     * @param bankCode the issuing bank's code
     * @param number the card PAN or account number
     */
    public record Instrument(InstrumentKind kind, String bankCode, String number) {
        /**
         * This instrument as the proto message sealed inside an instruction.
         *
         * @return the PaymentInstrument
         */
        public PaymentInstrument toProto() {
            return PaymentInstrument.newBuilder().setKind(kind).setBankCode(bankCode).setNumber(number).build();
        }

        @Override
        public String toString() {
            return "Instrument[" + kind + " at " + bankCode + ", number hidden]";
        }
    }

    /**
     * Reads a profile file.
     *
     * @param path the JSON file
     * @return the profile; relative paths inside are resolved against the file's directory
     * @throws IOException if it cannot be read
     * @throws IllegalArgumentException if a field is missing or malformed
     */
    public static Profile load(Path path) throws IOException {
        JsonObject json;
        try {
            json = JsonParser.parseString(Files.readString(path, StandardCharsets.UTF_8)).getAsJsonObject();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("profile " + path + " is not a JSON object");
        }
        Path base = path.toAbsolutePath().getParent();
        try {
            JsonObject bank = json.getAsJsonObject("bank");
            JsonObject merchant = json.getAsJsonObject("merchant");
            JsonObject instruments = json.getAsJsonObject("instruments");
            return new Profile(
                    string(json, "customer"),
                    base.resolve(string(json, "ca_cert")),
                    base.resolve(string(json, "cert")),
                    base.resolve(string(json, "key")),
                    base.resolve(string(json, "signing_key")),
                    new Bank(string(bank, "name"), string(bank, "address"), string(bank, "bank_code")),
                    new Merchant(string(merchant, "name"), string(merchant, "address")),
                    string(json, "account_id"),
                    string(json, "currency"),
                    instrument(instruments.getAsJsonObject("card")),
                    instrument(instruments.getAsJsonObject("account")));
        } catch (NullPointerException | ClassCastException | IllegalStateException e) {
            throw new IllegalArgumentException("profile " + path + " lacks a field or has one of the wrong type");
        }
    }

    /**
     * Reads the profile named by {@code PAYNET_PROFILE}.
     *
     * @return the profile
     * @throws IllegalStateException if the variable is unset, with how to start a network
     * @throws IOException if the file cannot be read
     */
    public static Profile fromEnvironment() throws IOException {
        String path = System.getenv(ENV);
        if (path == null || path.isBlank()) {
            throw new IllegalStateException(howToStartNetwork());
        }
        return load(Path.of(path));
    }

    /**
     * What to do when {@code PAYNET_PROFILE} is unset.
     *
     * @return a message telling how to start a network and point at its profile
     */
    public static String howToStartNetwork() {
        return ENV + " is not set. Start a network from the repository root with "
                + "`.venv/bin/python -m ops.clientnet --dir /tmp/java-net` (it prints "
                + "PAYNET_PROFILE=... for each language and stays up until interrupted), then run "
                + "`PAYNET_PROFILE=/tmp/java-net/profiles/java.json mvn test` in clients/java.";
    }

    /**
     * Reads the customer's Ed25519 signing key.
     *
     * @return the key
     * @throws IOException if the file cannot be read
     */
    public PrivateKey loadSigningKey() throws IOException {
        return Envelope.ed25519PrivateKeyFromPem(Files.readString(signingKey, StandardCharsets.US_ASCII));
    }

    private static String string(JsonObject json, String field) {
        return json.get(field).getAsString();
    }

    private static Instrument instrument(JsonObject json) {
        return new Instrument(InstrumentKind.valueOf(string(json, "kind")), string(json, "bank_code"),
                string(json, "number"));
    }
}
