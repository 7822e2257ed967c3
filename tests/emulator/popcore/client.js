// Drives @alicloud/pop-core (Alibaba's RPC client for Node.js) against the emulator for
// tests/emulator/test_popcore.py. Input: one JSON document on stdin,
//   {"endpoint": "http://127.0.0.1:PORT", "accessKeyId": "...", "accessKeySecret": "...",
//    "calls": [{"apiVersion": "2022-03-02", "action": "ImageModeration",
//               "params": {...}, "method": "GET" | "POST"}, ...]}
// Output: one JSON line on stdout, {"node": "v20...", "results": [...]}, one result per call:
// {"ok": true, "body": <answer>} or {"ok": false, "code": ..., "name": ..., "message": ...}
// (pop-core throws for any answer whose Code is not 200/OK/Success).
'use strict';

const RPCClient = require('@alicloud/pop-core');

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const results = [];
  for (const call of input.calls) {
    const client = new RPCClient({
      endpoint: input.endpoint,
      apiVersion: call.apiVersion,
      accessKeyId: input.accessKeyId,
      accessKeySecret: call.accessKeySecret || input.accessKeySecret,
    });
    const opts = { timeout: 30000 };
    if (call.method === 'POST') {
      opts.method = 'POST'; // every parameter, Signature included, in a form body
    } // default: GET, every parameter in the query string
    try {
      const body = await client.request(call.action, call.params || {}, opts);
      results.push({ ok: true, body: JSON.parse(JSON.stringify(body)) });
    } catch (err) {
      results.push({
        ok: false,
        code: err.code === undefined ? null : String(err.code),
        name: err.name,
        message: err.message,
        data: err.data || null,
      });
    }
  }
  process.stdout.write(JSON.stringify({ node: process.version, results: results }) + '\n');
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
