// nodemailer as an application uses it, as a command strategy of ses-fault-harness.
//
//   node send.js           one transport, its defaults: a new connection for every message,
//                          messages sent one after another (await in a loop)
//   node send.js --pool    a pooled transport with its defaults (5 connections, 100 messages
//                          each), every message handed to it at once (Promise.all)
//   --own-message-id       leave the Message-ID to nodemailer (its default, as most
//                          applications do): the harness ties the copies by envelope
//
// Each message is built the way nodemailer's documentation shows an application doing it
// (https://nodemailer.com/message/): from, to, subject, text, html and attachments by path, and
// the harness's Message-ID as `messageId`; no `envelope`, no `raw`. The manifest carries those
// parts beside each message's file. One JSON claim a line goes to HARNESS_CLAIMS: what
// nodemailer's promise said about each message.
"use strict";

const fs = require("node:fs");
const nodemailer = require("nodemailer");

const env = process.env;
const pooled = process.argv.includes("--pool");
const ownMessageId = process.argv.includes("--own-message-id");
const batch = JSON.parse(fs.readFileSync(env.HARNESS_MANIFEST, "utf8"));
const claims = fs.openSync(env.HARNESS_CLAIMS, "a");

const transport = nodemailer.createTransport({
  host: env.SMTP_HOST,
  port: Number(env.SMTP_PORT),
  secure: env.SMTP_TLS === "implicit",
  requireTLS: env.SMTP_TLS === "starttls",
  auth: env.SMTP_USER ? { user: env.SMTP_USER, pass: env.SMTP_PASSWORD } : undefined,
  tls: env.SMTP_CA_FILE ? { ca: fs.readFileSync(env.SMTP_CA_FILE) } : undefined,
  pool: pooled,
});

function claim(message, status, code, text) {
  const line = JSON.stringify({ id: message.id, status, code: code ?? null, text: text ?? null });
  fs.writeSync(claims, line + "\n");
}

function withoutCode(reply) {
  return reply.replace(/^\d{3}[ -]/, "");
}

async function send(message) {
  try {
    const info = await transport.sendMail({
      messageId: ownMessageId ? undefined : message.id,
      from: message.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html ?? undefined,
      attachments: message.attachments.map((a) => ({
        filename: a.filename,
        contentType: a.content_type,
        path: a.file,
      })),
    });
    claim(message, "sent", Number.parseInt(info.response, 10) || null, withoutCode(info.response));
  } catch (error) {
    // error.response is the server's reply line ("421 ..."); without one, the socket error.
    const reply = error.response ? withoutCode(error.response) : `${error.code}: ${error.message}`;
    claim(message, "failed", error.responseCode, reply);
  }
}

async function main() {
  if (pooled) {
    await Promise.all(batch.map(send));
  } else {
    for (const message of batch) {
      await send(message);
    }
  }
  transport.close();
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
