// The AWS SDK for JavaScript v3 as an application on the SES API uses it, as a command strategy
// of ses-fault-harness:
//
//   node send.js     one SESv2Client with its defaults (standard retry mode, 3 attempts), one
//                    SendEmailCommand per message with raw content, one after another
//
// The client is unmodified: only `endpoint` points at the fake (SES_API_URL), with the
// credentials and region the harness hands over. One JSON claim a line goes to HARNESS_CLAIMS:
// what the SDK's promise said about each message.
"use strict";

const fs = require("node:fs");
const { SESv2Client, SendEmailCommand } = require("@aws-sdk/client-sesv2");

const env = process.env;
const batch = JSON.parse(fs.readFileSync(env.HARNESS_MANIFEST, "utf8"));
const claims = fs.openSync(env.HARNESS_CLAIMS, "a");

const client = new SESv2Client({
  endpoint: env.SES_API_URL,
  region: env.AWS_REGION || "us-east-1",
  credentials: {
    accessKeyId: env.AWS_ACCESS_KEY_ID,
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
  },
});

function claim(message, status, code, text) {
  const line = JSON.stringify({ id: message.id, status, code: code ?? null, text: text ?? null });
  fs.writeSync(claims, line + "\n");
}

async function main() {
  for (const message of batch) {
    try {
      await client.send(
        new SendEmailCommand({
          FromEmailAddress: message.sender,
          Destination: { ToAddresses: message.recipients },
          Content: { Raw: { Data: fs.readFileSync(message.file) } },
        }),
      );
      claim(message, "sent");
    } catch (error) {
      // A service error carries the HTTP status; a lost connection has none.
      const status = error.$metadata ? error.$metadata.httpStatusCode : undefined;
      claim(message, "failed", status, `${error.name}: ${error.message}`);
    }
  }
  client.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
