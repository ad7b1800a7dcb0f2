<?php
// PHPMailer as an application uses it, as a command strategy of ses-fault-harness.
//
//   php send.php              the README's example: a new PHPMailer for each message (a new
//                             connection each time), exceptions on, the loop going on after one
//   php send.php --keepalive  the mailing-list example (examples/mailing_list.phps): one
//                             PHPMailer with SMTPKeepAlive over the whole batch; on an exception
//                             `$mail->getSMTPInstance()->reset()` and on to the next message
//
// Each message is built from the manifest's parts as PHPMailer's documentation shows (setFrom,
// addAddress, Subject, Body/AltBody, addAttachment), UTF-8, with the harness's Message-ID as
// `MessageID`. One JSON claim a line goes to HARNESS_CLAIMS: what send() said of each message.
// PHPMailer comes from Debian's libphp-phpmailer, or from Composer (vendor/autoload.php here).

use PHPMailer\PHPMailer\Exception;
use PHPMailer\PHPMailer\PHPMailer;

$autoload = is_file(__DIR__ . '/vendor/autoload.php')
    ? __DIR__ . '/vendor/autoload.php'
    : '/usr/share/php/libphp-phpmailer/autoload.php';
require $autoload;

$keepalive = in_array('--keepalive', $argv, true);
$batch = json_decode(file_get_contents(getenv('HARNESS_MANIFEST')), true);
$claims = fopen(getenv('HARNESS_CLAIMS'), 'a');

function claim($claims, array $message, string $status, ?int $code, ?string $text): void
{
    $line = ['id' => $message['id'], 'status' => $status, 'code' => $code, 'text' => $text];
    fwrite($claims, json_encode($line, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    fflush($claims);
}

// "Name <address>" as the application's database would hold it: the name and the address.
function person(string $header, string $address): array
{
    if (preg_match('/^\s*"?(.*?)"?\s*<[^>]+>\s*$/u', $header, $found)) {
        return [$address, stripslashes($found[1])];
    }
    return [$address, ''];
}

function mailer(): PHPMailer
{
    $mail = new PHPMailer(true); // true: failures are exceptions
    $mail->isSMTP();
    $mail->Host = getenv('SMTP_HOST');
    $mail->Port = (int) getenv('SMTP_PORT');
    $mail->CharSet = PHPMailer::CHARSET_UTF8;
    $tls = getenv('SMTP_TLS');
    if ($tls === 'starttls') {
        $mail->SMTPSecure = PHPMailer::ENCRYPTION_STARTTLS;
    } elseif ($tls === 'implicit') {
        $mail->SMTPSecure = PHPMailer::ENCRYPTION_SMTPS;
    } else {
        $mail->SMTPAutoTLS = false;
    }
    if (getenv('SMTP_CA_FILE')) {
        $mail->SMTPOptions = ['ssl' => ['cafile' => getenv('SMTP_CA_FILE')]];
    }
    if (getenv('SMTP_USER')) {
        $mail->SMTPAuth = true;
        $mail->Username = getenv('SMTP_USER');
        $mail->Password = getenv('SMTP_PASSWORD');
    }
    return $mail;
}

function compose(PHPMailer $mail, array $message): void
{
    [$address, $name] = person($message['from'], $message['sender']);
    $mail->setFrom($address, $name);
    $to = count($message['recipients']) === 1 ? person($message['to'], $message['recipients'][0]) : null;
    foreach ($message['recipients'] as $recipient) {
        $mail->addAddress($recipient, $to ? $to[1] : '');
    }
    $mail->MessageID = $message['id'];
    $mail->Subject = $message['subject'];
    if ($message['html'] !== null) {
        $mail->isHTML(true);
        $mail->Body = $message['html'];
        $mail->AltBody = $message['text'];
    } else {
        $mail->isHTML(false);
        $mail->Body = $message['text'];
    }
    foreach ($message['attachments'] as $attachment) {
        $mail->addAttachment($attachment['file'], $attachment['filename'], PHPMailer::ENCODING_BASE64, $attachment['content_type']);
    }
}

// The reply that decided a failure, from ErrorInfo: its first "Detail:" and "SMTP code:" (the
// SMTP instance's own last error is by then the failed RSET that send() tries after it).
function failure(PHPMailer $mail): array
{
    $info = $mail->ErrorInfo;
    $code = preg_match('/SMTP code: (\d{3})/', $info, $found) ? (int) $found[1] : null;
    $text = preg_match('/Detail: ([^\r\n]*)/', $info, $found) ? trim($found[1]) : trim($info);
    return [$code, $text !== '' ? $text : $info];
}

if ($keepalive) {
    $mail = mailer();
    $mail->SMTPKeepAlive = true; // the connection stays open between messages
    foreach ($batch as $message) {
        try {
            compose($mail, $message);
            $mail->send();
            claim($claims, $message, 'sent', null, null);
        } catch (Exception $e) {
            [$code, $text] = failure($mail);
            claim($claims, $message, 'failed', $code, $text);
            fwrite(STDERR, "Mailer Error ({$message['id']}) {$mail->ErrorInfo}\n");
            // Reset the connection to abort sending this message; the loop goes on.
            $mail->getSMTPInstance()->reset();
        }
        $mail->clearAddresses();
        $mail->clearAttachments();
    }
    $mail->smtpClose();
} else {
    foreach ($batch as $message) {
        $mail = mailer();
        try {
            compose($mail, $message);
            $mail->send();
            claim($claims, $message, 'sent', null, null);
        } catch (Exception $e) {
            [$code, $text] = failure($mail);
            claim($claims, $message, 'failed', $code, $text);
            fwrite(STDERR, "Message could not be sent. Mailer Error: {$mail->ErrorInfo}\n");
        }
    }
}
