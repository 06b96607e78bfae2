package dev.paynet.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;

/**
 * A paynet call or flow failed. When the failure is a gRPC error, {@link #reason()}
 * holds the {@code google.rpc.ErrorInfo} reason (domain {@code paynet.dev}),
 * which is what clients branch on.
 */
public final class PaynetException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String reason;
    private final Status.Code code;

    /**
     * A failure that is not a gRPC error (wrong state, digest mismatch, timeout).
     *
     * @param reason an UPPER_SNAKE reason
     * @param message what happened, without secrets
     */
    public PaynetException(String reason, String message) {
        super(reason + ": " + message);
        this.reason = reason;
        this.code = null;
    }

    private PaynetException(String call, Status.Code code, String reason, String description,
            StatusRuntimeException cause) {
        super(call + " failed: " + code + (reason.isEmpty() ? "" : " " + reason)
                + (description == null ? "" : " (" + description + ")"), cause);
        this.reason = reason;
        this.code = code;
    }

    /**
     * Wraps a gRPC error, extracting its ErrorInfo reason.
     *
     * @param call the RPC's name, for the message
     * @param error the error
     * @return the exception
     */
    public static PaynetException fromGrpc(String call, StatusRuntimeException error) {
        return new PaynetException(call, error.getStatus().getCode(), errorReason(error),
                error.getStatus().getDescription(), error);
    }

    /**
     * The ErrorInfo reason in a gRPC error's details, or "" if none.
     *
     * @param error the error
     * @return the reason
     */
    public static String errorReason(StatusRuntimeException error) {
        com.google.rpc.Status status = StatusProto.fromThrowable(error);
        if (status == null) {
            return "";
        }
        for (Any detail : status.getDetailsList()) {
            if (detail.is(ErrorInfo.class)) {
                try {
                    return detail.unpack(ErrorInfo.class).getReason();
                } catch (InvalidProtocolBufferException e) {
                    return "";
                }
            }
        }
        return "";
    }

    /**
     * The UPPER_SNAKE reason, or "" when the server gave none.
     *
     * @return the reason
     */
    public String reason() {
        return reason;
    }

    /**
     * The gRPC status code, or null when the failure was not a gRPC error.
     *
     * @return the code
     */
    public Status.Code code() {
        return code;
    }
}
