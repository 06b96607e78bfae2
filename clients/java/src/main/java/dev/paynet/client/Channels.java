package dev.paynet.client;

import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;

/**
 * Mutual-TLS gRPC channels to paynet nodes with a customer's certificate.
 */
public final class Channels {
    private Channels() {}

    /**
     * The TLS context of a profile: the customer's certificate and key as the
     * client identity, the network CA as the only trusted root.
     *
     * @param profile the customer's profile
     * @return a client SSL context for grpc-netty
     * @throws SSLException if a certificate or key cannot be read
     */
    public static SslContext sslContext(Profile profile) throws SSLException {
        return GrpcSslContexts.forClient()
                .trustManager(profile.caCert().toFile())
                .keyManager(profile.cert().toFile(), profile.key().toFile())
                .build();
    }

    /**
     * A channel to {@code host:port} over mutual TLS. The server certificate is
     * verified against the network CA and must name the host (nodes name
     * {@code localhost} and {@code 127.0.0.1}).
     *
     * @param profile the customer's profile
     * @param address {@code host:port}, for example {@code profile.merchant().address()}
     * @return the channel; shut it down with {@link #close}
     * @throws IOException if the TLS material cannot be read
     */
    public static ManagedChannel open(Profile profile, String address) throws IOException {
        return NettyChannelBuilder.forTarget(address).sslContext(sslContext(profile)).build();
    }

    /**
     * Shuts a channel down, waiting a few seconds for calls to end.
     *
     * @param channel the channel, or null
     */
    public static void close(ManagedChannel channel) {
        if (channel == null) {
            return;
        }
        channel.shutdown();
        try {
            if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
                channel.shutdownNow();
            }
        } catch (InterruptedException e) {
            channel.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
