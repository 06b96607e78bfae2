package dev.paynet.client;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;

/** Access to clients/vectors/envelope.json. */
final class Vectors {
    /** The vector file, relative to clients/java (Maven's working directory). */
    static final Path FILE = Path.of("..", "vectors", "envelope.json");

    private static JsonObject cached;

    private Vectors() {}

    static synchronized JsonObject json() {
        if (cached == null) {
            try {
                cached = JsonParser.parseString(Files.readString(FILE, StandardCharsets.UTF_8)).getAsJsonObject();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + FILE.toAbsolutePath(), e);
            }
        }
        return cached;
    }

    static String string(String field) {
        return json().get(field).getAsString();
    }

    static byte[] hex(String field) {
        return HexFormat.of().parseHex(string(field));
    }
}
