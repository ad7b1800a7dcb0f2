// The server's reply that decided a Jakarta Mail failure, read from the exception chain.
import com.sun.mail.smtp.SMTPAddressFailedException;
import com.sun.mail.smtp.SMTPSendFailedException;
import com.sun.mail.smtp.SMTPSenderFailedException;
import jakarta.mail.MessagingException;

final class Reply {
  final Integer code;
  final String text;

  private Reply(Integer code, String text) {
    this.code = code;
    this.text = text;
  }

  /** The first SMTP reply in the chain (getNextException, then getCause), else the innermost
   * exception's class and message. */
  static Reply of(Throwable error) {
    Throwable innermost = error;
    for (Throwable e = error; e != null; e = next(e)) {
      innermost = e;
      int code = -1;
      if (e instanceof SMTPSendFailedException) {
        code = ((SMTPSendFailedException) e).getReturnCode();
      } else if (e instanceof SMTPSenderFailedException) {
        code = ((SMTPSenderFailedException) e).getReturnCode();
      } else if (e instanceof SMTPAddressFailedException) {
        code = ((SMTPAddressFailedException) e).getReturnCode();
      }
      if (code > 0) {
        String message = String.valueOf(e.getMessage()).strip();
        return new Reply(code, message.replaceFirst("^\\d{3}[ -]", ""));
      }
    }
    return new Reply(null, innermost.getClass().getSimpleName() + ": " + innermost.getMessage());
  }

  private static Throwable next(Throwable e) {
    if (e instanceof MessagingException && ((MessagingException) e).getNextException() != null) {
      return ((MessagingException) e).getNextException();
    }
    return e.getCause() == e ? null : e.getCause();
  }
}
