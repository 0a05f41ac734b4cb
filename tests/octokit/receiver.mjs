// A webhook receiver nobody on this team wrote: GitHub's own
// @octokit/webhooks middleware, on Node's http or https server. Each
// delivery it accepts (signature verified) is printed to stdout as one JSON
// line; the port it listens on goes to stderr.
//
//   WEBHOOK_SECRET=s [TLS_CERT=cert.pem TLS_KEY=key.pem] node receiver.mjs
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const webhooks = new Webhooks({ secret: process.env.WEBHOOK_SECRET });
webhooks.onAny(({ id, name, payload }) => {
  process.stdout.write(
    JSON.stringify({ id, name, action: payload.action ?? null }) + "\n",
  );
});
const middleware = createNodeMiddleware(webhooks, { path: "/api/github/webhooks" });
const handler = (req, res) =>
  middleware(req, res, () => {
    res.writeHead(404);
    res.end();
  });
const server = process.env.TLS_CERT
  ? https.createServer(
      {
        cert: fs.readFileSync(process.env.TLS_CERT),
        key: fs.readFileSync(process.env.TLS_KEY),
      },
      handler,
    )
  : http.createServer(handler);
server.listen(0, "127.0.0.1", () => {
  process.stderr.write(`listening on ${server.address().port}\n`);
});
