/**
 * Java client of the paynet interbank network: profiles ({@link dev.paynet.client.Profile}),
 * mutual-TLS channels ({@link dev.paynet.client.Channels}), the payment envelope
 * ({@link dev.paynet.client.Envelope}), a buyer ({@link dev.paynet.client.Buyer}) and the
 * envelope interop tool ({@link dev.paynet.client.EnvelopeTool}). The gRPC stubs are generated
 * from {@code protos/} into package {@code interbank.v1}.
 */
package dev.paynet.client;
