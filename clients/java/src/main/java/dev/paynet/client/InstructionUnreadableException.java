package dev.paynet.client;

/**
 * A sealed instruction could not be opened: it was tampered with, sealed to
 * another gateway key, or sealed for another order digest. Mirrors the
 * network's {@code INSTRUCTION_UNREADABLE} reason. The message never holds
 * key material or plaintext.
 */
public final class InstructionUnreadableException extends Exception {
    private static final long serialVersionUID = 1L;

    /**
     * A new exception.
     *
     * @param why what went wrong, without secrets
     * @param cause the underlying failure, or null
     */
    public InstructionUnreadableException(String why, Throwable cause) {
        super(why, cause);
    }
}
