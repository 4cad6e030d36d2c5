// A test written in Node against a running mockserver (`mockserver serve`, or the pytest one):
// it takes a session of its own, sends its scenarios, talks to it with the official `openai`
// package, and asserts with one call to /_mockserver/verify.
//
//   MOCKSERVER_URL=http://127.0.0.1:8000 node sessions.mjs
import OpenAI from "openai";

const root = (process.env.MOCKSERVER_URL || "http://127.0.0.1:8000").replace(/\/v1\/?$/, "");
const session = `node-${process.pid}`;

async function control(method, path, body, contentType = "application/json") {
  const response = await fetch(`${root}/_mockserver/${path}?session=${session}`, {
    method,
    headers: { "content-type": contentType, "x-mockserver-admin": "1" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

// 1. This session's scenarios: a sequence other sessions cannot move on.
const added = await control("PUT", "scenarios", `
scenarios:
  - name: plan
    match: {last_user_message: {contains: plan}}
    sequence:
      - {content: "Step 1: read the ticket"}
      - {content: "Step 2: write the fix"}
`, "application/yaml");
if (added.status !== 201) throw new Error(`scenarios refused: ${JSON.stringify(added.body)}`);

// 2. The client under test: the session header on every request (a client that cannot add
//    headers uses baseURL `${root}/_mockserver/sessions/${session}/v1` instead).
const client = new OpenAI({
  baseURL: `${root}/v1`,
  apiKey: "sk-mockserver",
  defaultHeaders: { "x-mockserver-session": session },
  maxRetries: 0,
});
const said = [];
for (let i = 0; i < 2; i++) {
  const completion = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "What is the plan?" }],
  });
  said.push(completion.choices[0].message.content);
}
console.log(said.join("\n"));

// 3. Assert with one HTTP call: 200 when every expectation holds, 409 naming what differed.
const ok = await control("POST", "verify", {
  expectations: [{ scenario: "plan", times: 2 }, { unmatched: 0 }],
});
const wrong = await control("POST", "verify", { expectations: [{ scenario: "plan", times: 3 }] });
console.log(`verify: ${ok.status}; a wrong count: ${wrong.status} ${wrong.body.failures?.[0]}`);
if (ok.status !== 200 || wrong.status !== 409 || said[1] !== "Step 2: write the fix") {
  process.exit(1);
}
