// Jakarta Mail as an application uses it, as a command strategy of ses-fault-harness.
//
//   java Send               Transport.send(message) for each message, the API's own example:
//                           a new connection for every message; an exception is logged and the
//                           loop goes on
//   java Send --transport   one Transport (session.getTransport("smtp"), connect once) and
//                           transport.sendMessage(message, message.getAllRecipients()) for each
//                           message, as the API's docs advise for many messages; an exception is
//                           logged and the loop goes on
//
// Each message is a MimeMessage built from the manifest's parts (setFrom, setRecipients,
// setSubject, a multipart with text, html and attachments), UTF-8, keeping the harness's
// Message-ID the way the Jakarta Mail FAQ shows: a MimeMessage whose updateMessageID sets it.
// One JSON claim a line goes to HARNESS_CLAIMS. Compiled once with javac against Debian's
// libjakarta-mail-java (no build tool, no other library: the manifest is read with a few lines).
import jakarta.activation.DataHandler;
import jakarta.activation.FileDataSource;
import jakarta.mail.Message;
import jakarta.mail.MessagingException;
import jakarta.mail.Session;
import jakarta.mail.Transport;
import jakarta.mail.internet.InternetAddress;
import jakarta.mail.internet.MimeBodyPart;
import jakarta.mail.internet.MimeMessage;
import jakarta.mail.internet.MimeMultipart;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public class Send {
  /** A message that keeps the Message-ID it was given (the FAQ's subclass). */
  static class KeptIdMessage extends MimeMessage {
    private final String id;

    KeptIdMessage(Session session, String id) {
      super(session);
      this.id = id;
    }

    @Override
    protected void updateMessageID() throws MessagingException {
      setHeader("Message-ID", id);
    }
  }

  private static OutputStream claims;

  public static void main(String[] args) throws Exception {
    try {
      run(args);
    } catch (RuntimeException e) { // unchecked, so the loop's catch of MessagingException misses it
      e.printStackTrace();
      System.err.println("stopped: " + e);
      System.exit(1);
    }
  }

  static void run(String[] args) throws Exception {
    boolean oneTransport = List.of(args).contains("--transport");
    String manifest = Files.readString(Path.of(System.getenv("HARNESS_MANIFEST")));
    @SuppressWarnings("unchecked")
    List<Object> batch = (List<Object>) new Json(manifest).value();
    claims = new FileOutputStream(System.getenv("HARNESS_CLAIMS"), true);

    String tls = System.getenv("SMTP_TLS");
    String protocol = "implicit".equals(tls) ? "smtps" : "smtp";
    Properties props = new Properties();
    props.put("mail." + protocol + ".host", System.getenv("SMTP_HOST"));
    props.put("mail." + protocol + ".port", System.getenv("SMTP_PORT"));
    props.put("mail.smtp.starttls.enable", String.valueOf("starttls".equals(tls)));
    props.put("mail.smtp.starttls.required", String.valueOf("starttls".equals(tls)));
    String caFile = System.getenv("SMTP_CA_FILE");
    if (caFile != null && !caFile.isEmpty()) {
      System.setProperty("javax.net.ssl.trustStore", caFile);
      System.setProperty("javax.net.ssl.trustStoreType", "PEM");
      props.put("mail." + protocol + ".ssl.trust", System.getenv("SMTP_HOST"));
    }
    String user = System.getenv("SMTP_USER");
    boolean auth = user != null && !user.isEmpty();
    props.put("mail." + protocol + ".auth", String.valueOf(auth));
    Session session = Session.getInstance(props);
    String password = System.getenv("SMTP_PASSWORD");

    if (!oneTransport) {
      for (Object entry : batch) {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) entry;
        try {
          MimeMessage message = build(session, m);
          if (auth) {
            Transport.send(message, user, password);
          } else {
            Transport.send(message);
          }
          claim(m, null);
        } catch (MessagingException | IOException e) {
          claim(m, e);
        }
      }
      return;
    }
    Transport transport = session.getTransport(protocol);
    try {
      transport.connect(auth ? user : null, auth ? password : null);
    } catch (MessagingException e) {
      for (Object entry : batch) {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) entry;
        claim(m, e);
      }
      return;
    }
    for (Object entry : batch) {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = (Map<String, Object>) entry;
      try {
        MimeMessage message = build(session, m);
        message.saveChanges();
        transport.sendMessage(message, message.getAllRecipients());
        claim(m, null);
      } catch (MessagingException | IOException e) {
        claim(m, e);
      }
    }
    try {
      transport.close();
    } catch (MessagingException e) {
      System.err.println("close: " + e);
    }
  }

  @SuppressWarnings("unchecked")
  static MimeMessage build(Session session, Map<String, Object> m)
      throws MessagingException, IOException {
    MimeMessage message = new KeptIdMessage(session, (String) m.get("id"));
    message.setFrom(new InternetAddress((String) m.get("from")));
    message.setRecipients(Message.RecipientType.TO, InternetAddress.parse((String) m.get("to")));
    message.setSubject((String) m.get("subject"), "UTF-8");
    String text = (String) m.get("text");
    String html = (String) m.get("html");
    List<Object> attachments = (List<Object>) m.get("attachments");
    if (html == null && attachments.isEmpty()) {
      message.setText(text, "UTF-8");
      return message;
    }
    MimeMultipart body;
    if (html != null) {
      body = new MimeMultipart("alternative");
      MimeBodyPart plain = new MimeBodyPart();
      plain.setText(text, "UTF-8");
      MimeBodyPart rich = new MimeBodyPart();
      rich.setText(html, "UTF-8", "html");
      body.addBodyPart(plain);
      body.addBodyPart(rich);
    } else {
      body = new MimeMultipart();
      MimeBodyPart plain = new MimeBodyPart();
      plain.setText(text, "UTF-8");
      body.addBodyPart(plain);
    }
    if (!attachments.isEmpty()) {
      MimeMultipart mixed = new MimeMultipart();
      MimeBodyPart first = new MimeBodyPart();
      first.setContent(body);
      mixed.addBodyPart(first);
      for (Object item : attachments) {
        Map<String, Object> a = (Map<String, Object>) item;
        MimeBodyPart part = new MimeBodyPart();
        FileDataSource source = new FileDataSource((String) a.get("file"));
        part.setDataHandler(new DataHandler(source));
        part.setFileName((String) a.get("filename"));
        part.setHeader("Content-Type", (String) a.get("content_type"));
        mixed.addBodyPart(part);
      }
      body = mixed;
    }
    message.setContent(body);
    return message;
  }

  /** A claim: sent (error null) or failed with the server's reply when there was one. */
  static void claim(Map<String, Object> m, Exception error) throws IOException {
    String status = error == null ? "sent" : "failed";
    Integer code = null;
    String text = null;
    if (error != null) {
      System.err.println("could not send " + m.get("id") + ": " + error);
      Reply reply = Reply.of(error);
      code = reply.code;
      text = reply.text;
    }
    String line =
        "{\"id\":"
            + Json.quote((String) m.get("id"))
            + ",\"status\":\""
            + status
            + "\",\"code\":"
            + code
            + ",\"text\":"
            + (text == null ? "null" : Json.quote(text))
            + "}\n";
    claims.write(line.getBytes(StandardCharsets.UTF_8));
    claims.flush();
  }
}
