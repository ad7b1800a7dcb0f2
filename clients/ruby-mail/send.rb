# The mail gem as an application uses it, as a command strategy of ses-fault-harness.
#
#   ruby send.rb                 Mail.defaults with delivery_method :smtp, then `deliver` for
#                                each message: the gem opens a connection per message (as
#                                ActionMailer's :smtp delivery does)
#   ruby send.rb --connection    delivery_method :smtp_connection over one Net::SMTP.start
#                                block for the whole batch, as the gem's SMTPConnection docs show
#
# Each message is built from the manifest's parts as the gem's README shows (from, to, subject,
# text_part/html_part, add_file), with the harness's Message-ID as `message_id`. An exception is
# logged and the loop goes on. One JSON claim a line goes to HARNESS_CLAIMS.
require "json"
require "mail"
require "net/smtp"
require "openssl"

env = ENV
connection = ARGV.include?("--connection")
batch = JSON.parse(File.read(env.fetch("HARNESS_MANIFEST")))
claims = File.open(env.fetch("HARNESS_CLAIMS"), "a")
claims.sync = true

settings = {
  address: env.fetch("SMTP_HOST"),
  port: Integer(env.fetch("SMTP_PORT")),
  enable_starttls: env["SMTP_TLS"] == "starttls",
  enable_starttls_auto: false,
  tls: env["SMTP_TLS"] == "implicit",
}
settings[:ca_file] = env["SMTP_CA_FILE"] unless env["SMTP_CA_FILE"].to_s.empty?
unless env["SMTP_USER"].to_s.empty?
  settings.merge!(user_name: env["SMTP_USER"], password: env["SMTP_PASSWORD"], authentication: :plain)
end

def claim(claims, message, status, code = nil, text = nil)
  claims.puts(JSON.generate({ id: message["id"], status: status, code: code, text: text }))
end

def build(message)
  Mail.new do
    from message["from"]
    to message["to"]
    subject message["subject"]
    message_id message["id"]
    if message["html"]
      text_part { body message["text"] }
      html_part do
        content_type "text/html; charset=UTF-8"
        body message["html"]
      end
    else
      body message["text"]
    end
    message["attachments"].each do |attachment|
      add_file filename: attachment["filename"], content: File.binread(attachment["file"]),
               mime_type: attachment["content_type"]
    end
    charset = "UTF-8"
  end
end

# Net::SMTP raises its reply ("421 ...") as the message of an SMTPServerBusy, SMTPFatalError...;
# a socket error has no reply.
def failure(error)
  text = error.message.strip
  if error.is_a?(Net::SMTPError) && (found = text.match(/\A(\d{3})[ -](.*)/m))
    [Integer(found[1]), found[2].strip]
  else
    [nil, "#{error.class}: #{text}"]
  end
end

def send_each(batch, claims)
  batch.each do |message|
    mail = build(message)
    yield mail
    claim(claims, message, "sent")
  rescue StandardError => e
    code, text = failure(e)
    claim(claims, message, "failed", code, text)
    warn "could not send #{message['id']}: #{e.class}: #{e.message.strip}"
  end
end

if connection
  smtp = Net::SMTP.new(settings[:address], settings[:port])
  context = OpenSSL::SSL::SSLContext.new
  context.set_params(ca_file: settings[:ca_file]) if settings[:ca_file]
  smtp.enable_tls(context) if settings[:tls]
  smtp.enable_starttls(context) if settings[:enable_starttls]
  smtp.start("localhost", settings[:user_name], settings[:password], settings[:user_name] && :plain) do |open|
    send_each(batch, claims) do |mail|
      mail.delivery_method :smtp_connection, connection: open
      mail.deliver!
    end
  end
else
  Mail.defaults { delivery_method :smtp, settings }
  send_each(batch, claims) { |mail| mail.deliver! }
end
